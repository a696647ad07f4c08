variable "region" {
  description = "AWS region for every resource."
  type        = string
}

variable "name" {
  description = "Prefix of every resource name (bucket, repositories, roles, database)."
  type        = string
  default     = "conveyor"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,30}$", var.name))
    error_message = "name: lower-case letters, digits and dashes, 2-31 characters, starting with a letter."
  }
}

variable "tags" {
  description = "Extra tags on every resource."
  type        = map(string)
  default     = {}
}

variable "vpc_id" {
  description = "VPC of the Nomad cluster and the database."
  type        = string
}

variable "private_subnet_ids" {
  description = "Private subnets (at least two availability zones) for the database."
  type        = list(string)

  validation {
    condition     = length(var.private_subnet_ids) >= 2
    error_message = "RDS needs subnets in at least two availability zones."
  }
}

variable "logs_retention_days" {
  description = "Days an attempt's log (`logs/` in the bucket) is kept."
  type        = number
  default     = 30
}

variable "noncurrent_version_retention_days" {
  description = "Days an overwritten or deleted object's previous version is kept."
  type        = number
  default     = 7
}

variable "ecr_keep_images" {
  description = "Tagged images kept per repository; older ones expire (workflow images are per version)."
  type        = number
  default     = 200
}

variable "ecr_untagged_days" {
  description = "Days an untagged image (a superseded build cache layer set) is kept."
  type        = number
  default     = 7
}

variable "kms_deletion_window_days" {
  description = "Waiting period before the KMS key is deleted after `terraform destroy`."
  type        = number
  default     = 30
}

variable "db_instance_class" {
  description = "RDS instance class."
  type        = string
  default     = "db.t4g.medium"
}

variable "db_postgres_version" {
  description = "PostgreSQL major version; minor upgrades are applied automatically."
  type        = string
  default     = "16"
}

variable "db_allocated_storage_gb" {
  description = "Initial storage; it grows automatically up to db_max_allocated_storage_gb."
  type        = number
  default     = 20
}

variable "db_max_allocated_storage_gb" {
  description = "Upper bound of storage autoscaling."
  type        = number
  default     = 200
}

variable "db_multi_az" {
  description = "A standby in a second availability zone (failover in a minute or two)."
  type        = bool
  default     = true
}

variable "db_backup_retention_days" {
  description = "Days of automated backups (point-in-time recovery window)."
  type        = number
  default     = 14

  validation {
    condition     = var.db_backup_retention_days >= 7 && var.db_backup_retention_days <= 35
    error_message = "Keep between 7 and 35 days of backups."
  }
}

variable "db_name" {
  description = "Database created on the instance."
  type        = string
  default     = "conveyor"
}

variable "db_master_username" {
  description = "Master user; its password is generated and kept in Secrets Manager by RDS."
  type        = string
  default     = "conveyor_admin"
}

variable "trusted_service" {
  description = "Service principal that assumes the roles (the Nomad nodes' instance profiles)."
  type        = string
  default     = "ec2.amazonaws.com"
}
