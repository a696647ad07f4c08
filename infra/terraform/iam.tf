# Three roles, each for one kind of Nomad node (pin jobs with `node.class`; each role's tag
# `conveyor-node-class` names its class). Each may do what the processes on those nodes do:
# - control plane (conveyor server, scheduler): read and write the bucket's `runs/` (inputs,
#   outputs), `logs/` (attempt logs), `registrations/` (registration logs) and `builds/` (build
#   logs, read by the API and written by in-process builds); pull its own image;
# - builder (conveyor builder): write and read back `builds/` and `registrations/`; push workflow
#   images and the layer cache; pull its own image (the `server` repository's `-builder` tag);
# - worker nodes (user code): the Docker daemon pulls workflow images and the agent sidecar.
# The blob store calls HeadBucket, GetObject (and HEAD), PutObject (multipart above 8 MiB, aborted
# on failure) and presigned GETs: no process deletes or lists objects.
# Only ecr:GetAuthorizationToken takes Resource "*": AWS has no narrower resource for it.
# No role has rds-db:connect: every process logs in to PostgreSQL with a password.

data "aws_iam_policy_document" "assume_from_nodes" {
  statement {
    effect  = "Allow"
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = [var.trusted_service]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

# --- control plane -----------------------------------------------------------------------------

resource "aws_iam_role" "control_plane" {
  name               = "${var.name}-control-plane"
  assume_role_policy = data.aws_iam_policy_document.assume_from_nodes.json
  tags               = { "conveyor-node-class" = "conveyor-control" }
}

resource "aws_iam_instance_profile" "control_plane" {
  name = "${var.name}-control-plane"
  role = aws_iam_role.control_plane.name
}

resource "aws_iam_role_policy" "control_plane" {
  name   = "conveyor-control-plane"
  role   = aws_iam_role.control_plane.id
  policy = data.aws_iam_policy_document.control_plane.json
}

data "aws_iam_policy_document" "control_plane" {
  # s3:ListBucket also authorises HeadBucket (the store's start-up check) and lets a missing key
  # answer 404 rather than 403; neither request carries a prefix, hence IfExists.
  statement {
    sid       = "ListBlobPrefixes"
    effect    = "Allow"
    actions   = ["s3:ListBucket"]
    resources = [aws_s3_bucket.blobs.arn]
    condition {
      test     = "StringLikeIfExists"
      variable = "s3:prefix"
      values   = ["runs/*", "logs/*", "registrations/*", "builds/*"]
    }
  }

  statement {
    sid    = "ReadWriteBlobs"
    effect = "Allow"
    actions = [
      "s3:AbortMultipartUpload",
      "s3:GetObject",
      "s3:PutObject",
    ]
    resources = [
      "${aws_s3_bucket.blobs.arn}/runs/*",
      "${aws_s3_bucket.blobs.arn}/logs/*",
      "${aws_s3_bucket.blobs.arn}/registrations/*",
      "${aws_s3_bucket.blobs.arn}/builds/*",
    ]
  }

  statement {
    sid       = "UseKeyThroughS3"
    effect    = "Allow"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [aws_kms_key.conveyor.arn]
    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["s3.${var.region}.amazonaws.com"]
    }
  }

  statement {
    sid       = "EcrLogin"
    effect    = "Allow"
    actions   = ["ecr:GetAuthorizationToken"]
    resources = ["*"]
  }

  statement {
    sid    = "EcrPullOwnImage"
    effect = "Allow"
    actions = [
      "ecr:BatchCheckLayerAvailability",
      "ecr:BatchGetImage",
      "ecr:GetDownloadUrlForLayer",
    ]
    resources = [aws_ecr_repository.conveyor["server"].arn]
  }
}

# --- builder -----------------------------------------------------------------------------------

resource "aws_iam_role" "builder" {
  name               = "${var.name}-builder"
  assume_role_policy = data.aws_iam_policy_document.assume_from_nodes.json
  tags               = { "conveyor-node-class" = "conveyor-builder" }
}

resource "aws_iam_instance_profile" "builder" {
  name = "${var.name}-builder"
  role = aws_iam_role.builder.name
}

resource "aws_iam_role_policy" "builder" {
  name   = "conveyor-builder"
  role   = aws_iam_role.builder.id
  policy = data.aws_iam_policy_document.builder.json
}

data "aws_iam_policy_document" "builder" {
  # HeadBucket at start-up, as for the control plane.
  statement {
    sid       = "ListBlobPrefixes"
    effect    = "Allow"
    actions   = ["s3:ListBucket"]
    resources = [aws_s3_bucket.blobs.arn]
    condition {
      test     = "StringLikeIfExists"
      variable = "s3:prefix"
      values   = ["registrations/*", "builds/*"]
    }
  }

  # Build logs, and the registration log of the version it registers (read back into the build log).
  statement {
    sid    = "ReadWriteBuildBlobs"
    effect = "Allow"
    actions = [
      "s3:AbortMultipartUpload",
      "s3:GetObject",
      "s3:PutObject",
    ]
    resources = [
      "${aws_s3_bucket.blobs.arn}/registrations/*",
      "${aws_s3_bucket.blobs.arn}/builds/*",
    ]
  }

  statement {
    sid       = "UseKeyThroughS3"
    effect    = "Allow"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [aws_kms_key.conveyor.arn]
    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["s3.${var.region}.amazonaws.com"]
    }
  }

  statement {
    sid       = "EcrLogin"
    effect    = "Allow"
    actions   = ["ecr:GetAuthorizationToken"]
    resources = ["*"]
  }

  # Pull rights on the same repositories: BuildKit reads its registry cache (cache_from) back.
  statement {
    sid    = "EcrPushWorkflowImages"
    effect = "Allow"
    actions = [
      "ecr:BatchCheckLayerAvailability",
      "ecr:BatchGetImage",
      "ecr:CompleteLayerUpload",
      "ecr:GetDownloadUrlForLayer",
      "ecr:InitiateLayerUpload",
      "ecr:PutImage",
      "ecr:UploadLayerPart",
    ]
    resources = [
      aws_ecr_repository.conveyor["workflows"].arn,
      aws_ecr_repository.build_cache.arn,
    ]
  }

  # The node's Docker daemon pulls the builder's own image (`<server>:<tag>-builder`).
  statement {
    sid    = "EcrPullOwnImage"
    effect = "Allow"
    actions = [
      "ecr:BatchCheckLayerAvailability",
      "ecr:BatchGetImage",
      "ecr:GetDownloadUrlForLayer",
    ]
    resources = [aws_ecr_repository.conveyor["server"].arn]
  }
}

# --- worker nodes ------------------------------------------------------------------------------

resource "aws_iam_role" "worker_node" {
  name               = "${var.name}-worker-node"
  assume_role_policy = data.aws_iam_policy_document.assume_from_nodes.json
  tags               = { "conveyor-node-class" = "conveyor-worker" }
}

resource "aws_iam_instance_profile" "worker_node" {
  name = "${var.name}-worker-node"
  role = aws_iam_role.worker_node.name
}

resource "aws_iam_role_policy" "worker_node" {
  name   = "conveyor-worker-node"
  role   = aws_iam_role.worker_node.id
  policy = data.aws_iam_policy_document.worker_node.json
}

data "aws_iam_policy_document" "worker_node" {
  statement {
    sid       = "EcrLogin"
    effect    = "Allow"
    actions   = ["ecr:GetAuthorizationToken"]
    resources = ["*"]
  }

  statement {
    sid    = "EcrPullWorkflowImages"
    effect = "Allow"
    actions = [
      "ecr:BatchCheckLayerAvailability",
      "ecr:BatchGetImage",
      "ecr:GetDownloadUrlForLayer",
    ]
    resources = [
      aws_ecr_repository.conveyor["workflows"].arn,
      # The `conveyor agent` sidecar runs from the control-plane image.
      aws_ecr_repository.conveyor["server"].arn,
    ]
  }
}

# --- RDS enhanced monitoring -------------------------------------------------------------------

data "aws_iam_policy_document" "assume_from_rds_monitoring" {
  statement {
    effect  = "Allow"
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["monitoring.rds.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_iam_role" "rds_monitoring" {
  name               = "${var.name}-rds-monitoring"
  assume_role_policy = data.aws_iam_policy_document.assume_from_rds_monitoring.json
}

resource "aws_iam_role_policy_attachment" "rds_monitoring" {
  role       = aws_iam_role.rds_monitoring.name
  policy_arn = "arn:${local.partition}:iam::aws:policy/service-role/AmazonRDSEnhancedMonitoringRole"
}
