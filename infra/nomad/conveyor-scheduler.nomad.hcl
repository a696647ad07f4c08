# The scheduler: admission, retries, timeouts, cron, and the Nomad executor that dispatches one
# parameterized batch job per attempt (see worker-template.nomad.hcl). Replicas are safe on
# PostgreSQL (claims use FOR UPDATE SKIP LOCKED); /healthz serves the liveness check.
#
#   nomad var put nomad/jobs/conveyor-scheduler database_url='postgresql+asyncpg://…' \
#     nomad_token='…' nomad_ca_cert=@nomad-ca.pem attempt_token_secret='…' \
#     secrets_key='…'   # the server's values
#   nomad job run -var image=<account>.dkr.ecr.<region>.amazonaws.com/conveyor/server:<tag> \
#     -var blobs_url=s3://<bucket> -var region=<region> \
#     -var control_plane_url=https://<the server's HTTPS address, as worker nodes reach it> \
#     conveyor-scheduler.nomad.hcl

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

job "conveyor-scheduler" {
  type        = "service"
  datacenters = var.datacenters

  constraint {
    attribute = "${node.class}"
    value     = "conveyor-control"
  }

  # One replica at a time: the new one reconciles running attempts with Nomad before the old one
  # stops, so nothing is lost or started twice.
  update {
    max_parallel      = 1
    health_check      = "checks"
    min_healthy_time  = "15s"
    healthy_deadline  = "3m"
    progress_deadline = "10m"
    auto_revert       = true
  }

  group "scheduler" {
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
      name     = "conveyor-scheduler"
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

    task "scheduler" {
      driver = "docker"

      config {
        image   = var.image
        command = "conveyor"
        args    = ["scheduler"]
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
      }

      template {
        destination = "${NOMAD_SECRETS_DIR}/conveyor.env"
        env         = true
        change_mode = "restart"
        data        = <<-EOT
          {{ with nomadVar "nomad/jobs/conveyor-scheduler" }}
          CONVEYOR_DATABASE__URL={{ .database_url }}
          NOMAD_TOKEN={{ .nomad_token }}
          CONVEYOR_NOMAD__TOKEN={{ .nomad_token }}
          CONVEYOR_NOMAD__ATTEMPT_TOKEN_SECRET={{ .attempt_token_secret }}
          CONVEYOR_BUILDS__SECRETS_KEY={{ .secrets_key }}
          {{ end }}
        EOT
      }

      # the CA of the Nomad API's certificate: the executor verifies it (docs/nomad.md, TLS)
      template {
        destination = "${NOMAD_SECRETS_DIR}/nomad-ca.pem"
        perms       = "0400"
        change_mode = "restart"
        data        = <<-EOT
          {{ with nomadVar "nomad/jobs/conveyor-scheduler" }}{{ .nomad_ca_cert }}{{ end }}
        EOT
      }

      resources {
        cpu    = 1000
        memory = 1024
      }

      # Time to hand in-flight state back to the database before SIGKILL.
      kill_timeout = "30s"
    }
  }
}
