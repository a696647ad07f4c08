# `server`: the control-plane image (conveyor server / scheduler / builder / agent).
# `workflows`: images the builder makes, one tag per workflow version; the Nomad executor runs them.

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
