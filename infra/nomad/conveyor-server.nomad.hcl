# The REST API, dashboard and webhook: `conveyor server`, behind any load balancer that reads the
# Nomad service catalogue. Stateless: replicas share PostgreSQL and the S3 bucket.
#
#   nomad var put nomad/jobs/conveyor-server database_url='postgresql+asyncpg://…' \
#     nomad_token='…' nomad_ca_cert=@nomad-ca.pem attempt_token_secret='…' secrets_key='…' \
#     github_app_id='…' github_private_key=@app.pem github_webhook_secret='…'
#   (attempt_token_secret and secrets_key: the same values for server, scheduler and builder)
#   nomad job run -var image=<account>.dkr.ecr.<region>.amazonaws.com/conveyor/server:<tag> \
#     -var blobs_url=s3://<bucket> -var region=<region> \
#     -var control_plane_url=https://<the server's HTTPS address, as worker nodes reach it> \
#     conveyor-server.nomad.hcl

variable "image" {
  description = "Control-plane image (terraform output server_repository_url, with a tag)."
  type        = string
}

variable "blobs_url" {
  description = "terraform output blobs_url."
  type        = string
}

variable "region" {
  description = "AWS region of the bucket."
  type        = string
}

variable "nomad_addr" {
  description = "Nomad API the executor dispatches worker jobs to."
  type        = string
  default     = "https://nomad.service.consul:4646"
}

variable "control_plane_url" {
  description = "The server as worker nodes reach it: the `conveyor agent` sidecars relay to it."
  type        = string
  default     = "http://conveyor-server.service.consul:8120"
}

variable "datacenters" {
  type    = list(string)
  default = ["*"]
}

variable "replicas" {
  type    = number
  default = 2
}

job "conveyor-server" {
  type        = "service"
  datacenters = var.datacenters

  # Control-plane nodes carry the control-plane instance profile and security group.
  constraint {
    attribute = "${node.class}"
    value     = "conveyor-control"
  }

  update {
    max_parallel      = 1
    health_check      = "checks"
    min_healthy_time  = "10s"
    healthy_deadline  = "3m"
    progress_deadline = "10m"
    auto_revert       = true
  }

  group "server" {
    count = var.replicas

    spread {
      attribute = "${node.unique.id}"
    }

    network {
      port "http" {
        to = 8120
      }
    }

    service {
      name     = "conveyor-server"
      provider = "nomad"
      port     = "http"

      check {
        name     = "healthz"
        type     = "http"
        path     = "/healthz"
        interval = "10s"
        timeout  = "2s"
      }
    }

    task "server" {
      driver = "docker"

      config {
        image   = var.image
        command = "conveyor"
        args    = ["server"]
        ports   = ["http"]
      }

      env {
        CONVEYOR_HOST           = "0.0.0.0"
        CONVEYOR_PORT           = "8120"
        CONVEYOR_BLOBS__URL     = var.blobs_url
        CONVEYOR_BLOBS__REGION  = var.region
        CONVEYOR_EXECUTOR__KIND = "nomad"
        NOMAD_ADDR              = var.nomad_addr
        AWS_REGION              = var.region

        CONVEYOR_NOMAD__ADDRESS           = var.nomad_addr
        CONVEYOR_NOMAD__CA_CERT           = "${NOMAD_SECRETS_DIR}/nomad-ca.pem"
        CONVEYOR_NOMAD__DATACENTERS       = jsonencode(var.datacenters)
        CONVEYOR_NOMAD__CONTROL_PLANE_URL = var.control_plane_url
        CONVEYOR_NOMAD__AGENT_IMAGE       = var.image

        # builds run in `conveyor builder` (conveyor-builder.nomad.hcl): this image has no BuildKit
        CONVEYOR_BUILDS__IN_PROCESS       = "false"
        CONVEYOR_GITHUB__PRIVATE_KEY_PATH = "${NOMAD_SECRETS_DIR}/github-app.pem"
      }

      # Secrets come from Nomad Variables readable by this job only, never from the job file.
      template {
        destination = "${NOMAD_SECRETS_DIR}/conveyor.env"
        env         = true
        change_mode = "restart"
        data        = <<-EOT
          {{ with nomadVar "nomad/jobs/conveyor-server" }}
          CONVEYOR_DATABASE__URL={{ .database_url }}
          NOMAD_TOKEN={{ .nomad_token }}
          CONVEYOR_NOMAD__TOKEN={{ .nomad_token }}
          CONVEYOR_NOMAD__ATTEMPT_TOKEN_SECRET={{ .attempt_token_secret }}
          CONVEYOR_BUILDS__SECRETS_KEY={{ .secrets_key }}
          {{ with .github_app_id }}
          CONVEYOR_GITHUB__APP_ID={{ . }}
          {{ end }}
          {{ with .github_webhook_secret }}
          CONVEYOR_GITHUB__WEBHOOK_SECRET={{ . }}
          {{ end }}
          {{ end }}
        EOT
      }

      template {
        destination = "${NOMAD_SECRETS_DIR}/github-app.pem"
        perms       = "0400"
        change_mode = "restart"
        data        = <<-EOT
          {{ with nomadVar "nomad/jobs/conveyor-server" }}{{ .github_private_key }}{{ end }}
        EOT
      }

      # the CA of the Nomad API's certificate: the executor verifies it (docs/nomad.md, TLS)
      template {
        destination = "${NOMAD_SECRETS_DIR}/nomad-ca.pem"
        perms       = "0400"
        change_mode = "restart"
        data        = <<-EOT
          {{ with nomadVar "nomad/jobs/conveyor-server" }}{{ .nomad_ca_cert }}{{ end }}
        EOT
      }

      resources {
        cpu    = 1000
        memory = 1024
      }

      kill_timeout = "30s"
    }
  }
}
