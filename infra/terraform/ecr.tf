# `server`: the control-plane image (conveyor server / scheduler / builder / agent).
# `workflows`: images the builder makes, one tag per workflow version (`<slug>-<commit>`); the
#   Nomad executor runs them.
# `build-cache`: BuildKit's registry cache (`mode=max`, one tag per workflow, rewritten by every
#   build): what lets a builder on one node reuse the layers another node built.

locals {
  repositories = toset(["server", "workflows"])
}

resource "aws_ecr_repository" "conveyor" {
  for_each = local.repositories

  name = "${var.name}/${each.key}"
  # A tag names one build forever: a retried attempt runs exactly the image its version registered.
  image_tag_mutability = "IMMUTABLE"

  image_scanning_configuration {
    scan_on_push = true
  }

  encryption_configuration {
    encryption_type = "KMS"
    kms_key         = aws_kms_key.conveyor.arn
  }
}

resource "aws_ecr_lifecycle_policy" "conveyor" {
  for_each = local.repositories

  repository = aws_ecr_repository.conveyor[each.key].name
  policy = jsonencode({
    rules = [
      {
        rulePriority = 1
        description  = "Drop untagged images (superseded layers) after ${var.ecr_untagged_days} days"
        selection = {
          tagStatus   = "untagged"
          countType   = "sinceImagePushed"
          countUnit   = "days"
          countNumber = var.ecr_untagged_days
        }
        action = { type = "expire" }
      },
      {
        rulePriority = 2
        description  = "Keep the newest ${var.ecr_keep_images} images"
        selection = {
          tagStatus   = "any"
          countType   = "imageCountMoreThan"
          countNumber = var.ecr_keep_images
        }
        action = { type = "expire" }
      },
    ]
  })
}

resource "aws_ecr_repository" "build_cache" {
  #checkov:skip=CKV_AWS_51:a cache tag is rewritten by every build of its workflow; no task ever runs an image from here
  name                 = "${var.name}/build-cache"
  image_tag_mutability = "MUTABLE"

  image_scanning_configuration {
    scan_on_push = true
  }

  encryption_configuration {
    encryption_type = "KMS"
    kms_key         = aws_kms_key.conveyor.arn
  }
}

resource "aws_ecr_lifecycle_policy" "build_cache" {
  repository = aws_ecr_repository.build_cache.name
  policy = jsonencode({
    rules = [
      {
        rulePriority = 1
        description  = "Drop cache layers no tag refers to any more after ${var.ecr_untagged_days} days"
        selection = {
          tagStatus   = "untagged"
          countType   = "sinceImagePushed"
          countUnit   = "days"
          countNumber = var.ecr_untagged_days
        }
        action = { type = "expire" }
      },
    ]
  })
}
