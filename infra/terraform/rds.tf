# PostgreSQL for the control plane and the builders (CONVEYOR_DATABASE__URL). Reachable only from
# members of the two node security groups: the Nomad nodes of class `conveyor-control` join the
# first, those of class `conveyor-builder` (which claim builds from the database) the second.

locals {
  postgres_major = split(".", var.db_postgres_version)[0]
}

resource "aws_security_group" "control_plane" {
  #checkov:skip=CKV2_AWS_5:Attached outside this configuration, to the control-plane Nomad nodes (output control_plane_security_group_id).
  name        = "${var.name}-control-plane"
  description = "Conveyor control-plane nodes: membership grants access to the database"
  vpc_id      = var.vpc_id
  tags        = { "conveyor-node-class" = "conveyor-control" }
}

resource "aws_security_group" "builder" {
  #checkov:skip=CKV2_AWS_5:Attached outside this configuration, to the builder Nomad nodes (output builder_security_group_id).
  name        = "${var.name}-builder"
  description = "Conveyor builder nodes: membership grants access to the database"
  vpc_id      = var.vpc_id
  tags        = { "conveyor-node-class" = "conveyor-builder" }
}

resource "aws_security_group" "database" {
  name        = "${var.name}-database"
  description = "Conveyor database: PostgreSQL from the control plane and the builders only"
  vpc_id      = var.vpc_id
}

resource "aws_vpc_security_group_ingress_rule" "database_from_control_plane" {
  security_group_id            = aws_security_group.database.id
  description                  = "PostgreSQL from the control plane"
  ip_protocol                  = "tcp"
  from_port                    = 5432
  to_port                      = 5432
  referenced_security_group_id = aws_security_group.control_plane.id
}

resource "aws_vpc_security_group_egress_rule" "control_plane_to_database" {
  security_group_id            = aws_security_group.control_plane.id
  description                  = "PostgreSQL to the database"
  ip_protocol                  = "tcp"
  from_port                    = 5432
  to_port                      = 5432
  referenced_security_group_id = aws_security_group.database.id
}

resource "aws_vpc_security_group_ingress_rule" "database_from_builder" {
  security_group_id            = aws_security_group.database.id
  description                  = "PostgreSQL from the builders"
  ip_protocol                  = "tcp"
  from_port                    = 5432
  to_port                      = 5432
  referenced_security_group_id = aws_security_group.builder.id
}

resource "aws_vpc_security_group_egress_rule" "builder_to_database" {
  security_group_id            = aws_security_group.builder.id
  description                  = "PostgreSQL to the database"
  ip_protocol                  = "tcp"
  from_port                    = 5432
  to_port                      = 5432
  referenced_security_group_id = aws_security_group.database.id
}

resource "aws_db_subnet_group" "conveyor" {
  name       = "${var.name}-database"
  subnet_ids = var.private_subnet_ids
}

resource "aws_db_parameter_group" "conveyor" {
  name   = "${var.name}-postgres${local.postgres_major}"
  family = "postgres${local.postgres_major}"

  parameter {
    name  = "rds.force_ssl"
    value = "1"
  }

  # Statements slower than a second and every connection go to the exported postgresql log.
  parameter {
    name  = "log_min_duration_statement"
    value = "1000"
  }

  parameter {
    name  = "log_connections"
    value = "1"
  }

  parameter {
    name  = "log_statement"
    value = "ddl"
  }

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_db_instance" "conveyor" {
  identifier     = "${var.name}-database"
  engine         = "postgres"
  engine_version = var.db_postgres_version
  instance_class = var.db_instance_class

  db_name                             = var.db_name
  username                            = var.db_master_username
  manage_master_user_password         = true
  master_user_secret_kms_key_id       = aws_kms_key.conveyor.arn
  iam_database_authentication_enabled = true

  allocated_storage     = var.db_allocated_storage_gb
  max_allocated_storage = var.db_max_allocated_storage_gb
  storage_type          = "gp3"
  storage_encrypted     = true
  kms_key_id            = aws_kms_key.conveyor.arn

  db_subnet_group_name   = aws_db_subnet_group.conveyor.name
  vpc_security_group_ids = [aws_security_group.database.id]
  publicly_accessible    = false
  multi_az               = var.db_multi_az
  parameter_group_name   = aws_db_parameter_group.conveyor.name

  backup_retention_period   = var.db_backup_retention_days
  backup_window             = "03:00-04:00"
  maintenance_window        = "sun:04:30-sun:05:30"
  copy_tags_to_snapshot     = true
  deletion_protection       = true
  skip_final_snapshot       = false
  final_snapshot_identifier = "${var.name}-database-final"

  auto_minor_version_upgrade  = true
  allow_major_version_upgrade = false
  apply_immediately           = false

  enabled_cloudwatch_logs_exports       = ["postgresql", "upgrade"]
  monitoring_interval                   = 60
  monitoring_role_arn                   = aws_iam_role.rds_monitoring.arn
  performance_insights_enabled          = true
  performance_insights_kms_key_id       = aws_kms_key.conveyor.arn
  performance_insights_retention_period = 7
}
