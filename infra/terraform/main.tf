# Conveyor on AWS: the payload and log bucket, image repositories, roles and the PostgreSQL database
# of the control plane. The Nomad cluster itself (VPC, nodes) is the operator's; its node pools take
# the instance profiles and the security group declared here. One KMS key encrypts everything.

provider "aws" {
  region = var.region

  default_tags {
    tags = merge({ "app" = "conveyor", "managed-by" = "terraform" }, var.tags)
  }
}

data "aws_caller_identity" "current" {}

data "aws_partition" "current" {}

locals {
  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition
}

resource "aws_kms_key" "conveyor" {
  description             = "${var.name}: payloads, logs, images, database, backups"
  enable_key_rotation     = true
  deletion_window_in_days = var.kms_deletion_window_days
  policy                  = data.aws_iam_policy_document.kms_key.json
}

resource "aws_kms_alias" "conveyor" {
  name          = "alias/${var.name}"
  target_key_id = aws_kms_key.conveyor.key_id
}

# A key policy's Resource must be "*" (it means this key). Administration stays with the account so
# IAM policies decide who manages the key; services use it through grants and IAM policies.
data "aws_iam_policy_document" "kms_key" {
  #checkov:skip=CKV_AWS_109:Key policy: Resource "*" is this key; the account keeps administration so the key is never orphaned.
  #checkov:skip=CKV_AWS_111:Key policy: Resource "*" is this key; the account keeps administration so the key is never orphaned.
  #checkov:skip=CKV_AWS_356:Key policy: Resource "*" is the only value AWS accepts in a key policy.
  statement {
    sid    = "AccountAdministers"
    effect = "Allow"
    principals {
      type        = "AWS"
      identifiers = ["arn:${local.partition}:iam::${local.account_id}:root"]
    }
    actions = [
      "kms:CancelKeyDeletion",
      "kms:CreateAlias",
      "kms:CreateGrant",
      "kms:Decrypt",
      "kms:DeleteAlias",
      "kms:DescribeKey",
      "kms:DisableKey",
      "kms:DisableKeyRotation",
      "kms:EnableKey",
      "kms:EnableKeyRotation",
      "kms:Encrypt",
      "kms:GenerateDataKey",
      "kms:GenerateDataKeyWithoutPlaintext",
      "kms:GetKeyPolicy",
      "kms:GetKeyRotationStatus",
      "kms:ListAliases",
      "kms:ListGrants",
      "kms:ListKeyPolicies",
      "kms:ListResourceTags",
      "kms:PutKeyPolicy",
      "kms:ReEncryptFrom",
      "kms:ReEncryptTo",
      "kms:RetireGrant",
      "kms:RevokeGrant",
      "kms:ScheduleKeyDeletion",
      "kms:TagResource",
      "kms:UntagResource",
      "kms:UpdateAlias",
      "kms:UpdateKeyDescription",
    ]
    resources = ["*"]
  }
}
