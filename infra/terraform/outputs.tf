output "blob_bucket" {
  description = "The bucket: CONVEYOR_BLOBS__URL=s3://<this>."
  value       = aws_s3_bucket.blobs.bucket
}

output "blobs_url" {
  description = "Value for CONVEYOR_BLOBS__URL."
  value       = "s3://${aws_s3_bucket.blobs.bucket}"
}

output "kms_key_arn" {
  description = "The key that encrypts the bucket, the images, the database and its secret."
  value       = aws_kms_key.conveyor.arn
}

output "server_repository_url" {
  description = "Push the control-plane image here."
  value       = aws_ecr_repository.conveyor["server"].repository_url
}

output "workflows_repository_url" {
  description = "The builder's registry for workflow images."
  value       = aws_ecr_repository.conveyor["workflows"].repository_url
}

output "build_cache_repository_url" {
  description = "Where builders keep BuildKit's registry cache: CONVEYOR_BUILDS__CACHE_REPOSITORY."
  value       = aws_ecr_repository.build_cache.repository_url
}

output "registry_host" {
  description = "The account's ECR host, which builders log in to (ecr:GetAuthorizationToken)."
  value       = split("/", aws_ecr_repository.conveyor["workflows"].repository_url)[0]
}

output "control_plane_instance_profile" {
  description = "Instance profile of the Nomad nodes of class conveyor-control."
  value       = aws_iam_instance_profile.control_plane.name
}

output "builder_instance_profile" {
  description = "Instance profile of the Nomad nodes of class conveyor-builder."
  value       = aws_iam_instance_profile.builder.name
}

output "worker_node_instance_profile" {
  description = "Instance profile of the Nomad nodes of class conveyor-worker."
  value       = aws_iam_instance_profile.worker_node.name
}

output "control_plane_security_group_id" {
  description = "Attach to the Nomad nodes of class conveyor-control: their way into the database."
  value       = aws_security_group.control_plane.id
}

output "builder_security_group_id" {
  description = "Attach to the Nomad nodes of class conveyor-builder: their way into the database."
  value       = aws_security_group.builder.id
}

output "database_endpoint" {
  description = "host:port of PostgreSQL."
  value       = aws_db_instance.conveyor.endpoint
}

output "database_name" {
  description = "Database the control plane uses."
  value       = aws_db_instance.conveyor.db_name
}

output "database_master_secret_arn" {
  description = "Secrets Manager secret holding the master user's generated password."
  value       = aws_db_instance.conveyor.master_user_secret[0].secret_arn
}
