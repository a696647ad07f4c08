# The builders: `conveyor builder` claims queued builds from PostgreSQL (FOR UPDATE SKIP LOCKED),
# fetches the commit, builds the image on the BuildKit daemon beside it, pushes it and the layer
# cache (`mode=max`) to ECR, and registers the version as a register-mode dispatch on Nomad,
# whose `conveyor agent` sidecar relays back to this allocation's `relay` port.
#
# BuildKit runs rootless (moby/buildkit:*-rootless, as uid 1000): no privileged container. It needs
# unprivileged user namespaces on the node (`sysctl kernel.unprivileged_userns_clone=1` on Debian;
# `user.max_user_namespaces` > 0), seccomp and AppArmor relaxed for its own user namespace
# (`security_opt` below; the node's docker plugin must not forbid them), and
# `--oci-worker-no-process-sandbox` (RUN steps share the daemon's process namespace).
# The group's bridge network (CNI plugins on the node) lets the builder reach it on 127.0.0.1.
#
#   nomad var put nomad/jobs/conveyor-builder database_url='postgresql+asyncpg://…' \
#     nomad_token='…' nomad_ca_cert=@nomad-ca.pem attempt_token_secret='…' secrets_key='…' \
#     github_app_id='…' github_private_key=@app.pem     # the server's values
#   nomad job run -var builder_image=<account>.dkr.ecr.<region>.amazonaws.com/conveyor/server:<tag>-builder \
#     -var agent_image=<…>/conveyor/server:<tag> -var blobs_url=s3://<bucket> -var region=<region> \
#     -var workflows_repository_url=<terraform output> -var build_cache_repository_url=<output> \
#     conveyor-builder.nomad.hcl

variable "builder_image" {
  description = "The control-plane image with the docker CLI, buildx and git (infra/docker/builder.Dockerfile)."
  type        = string
}

variable "agent_image" {
  description = "The control-plane image: the `conveyor agent` sidecar of register dispatches."
  type        = string
}

variable "buildkit_image" {
  description = "Rootless BuildKit."
  type        = string
  default     = "moby/buildkit:v0.17.3-rootless"
}

variable "base_image" {
  description = "FROM of the Dockerfile generated for repositories that have none."
  type        = string
  default     = "python:3.11-slim"
}

variable "workflows_repository_url" {
  description = "terraform output workflows_repository_url: every workflow's images."
  type        = string
}

variable "build_cache_repository_url" {
  description = "terraform output build_cache_repository_url: BuildKit's registry cache."
  type        = string
}

variable "blobs_url" {
  description = "terraform output blobs_url (build logs)."
  type        = string
}

variable "region" {
  description = "AWS region of the bucket and the registry."
  type        = string
}

variable "nomad_addr" {
  description = "Nomad API register steps are dispatched to."
  type        = string
  default     = "https://nomad.service.consul:4646"
}

variable "datacenters" {
  type    = list(string)
  default = ["*"]
}

variable "replicas" {
  type    = number
  default = 2
}

variable "parallel_builds" {
  description = "Builds one builder runs at once."
  type        = number
  default     = 2
}

job "conveyor-builder" {
  type        = "service"
  datacenters = var.datacenters

  # Builder nodes carry the builder instance profile: push to the two repositories, nothing else.
  constraint {
    attribute = "${node.class}"
    value     = "conveyor-builder"
  }

  # A replacement starts before the old allocation stops; the old one finishes its builds (or
  # hands them back at the kill timeout) and the queue keeps them for whoever is up.
  update {
    max_parallel      = 1
    health_check      = "checks"
    min_healthy_time  = "10s"
    healthy_deadline  = "5m"
    progress_deadline = "15m"
    auto_revert       = true
  }

  group "builder" {
    count = var.replicas

    spread {
      attribute = "${node.unique.id}"
    }

    network {
      mode = "bridge"
      # register-mode workers on worker nodes relay to this port
      port "relay" {
        to = 8121
      }
    }

    # BuildKit's local cache survives an update of the job on the same node
    ephemeral_disk {
      sticky  = true
      migrate = false
      size    = 20000
    }

    service {
      name     = "conveyor-builder"
      provider = "nomad"
      port     = "relay"

      check {
        name     = "healthz"
        type     = "http"
        path     = "/healthz"
        interval = "10s"
        timeout  = "2s"
      }
    }

    task "buildkitd" {
      driver = "docker"

      lifecycle {
        hook    = "prestart"
        sidecar = true
      }

      config {
        image = var.buildkit_image
        args = [
          "--addr", "tcp://127.0.0.1:1234",
          "--oci-worker-no-process-sandbox",
        ]
        security_opt = ["seccomp=unconfined", "apparmor=unconfined"]
        volumes      = ["../alloc/data/buildkit:/home/user/.local/share/buildkit"]
      }

      resources {
        cpu    = 4000
        memory = 4096
      }
    }

    task "builder" {
      driver = "docker"

      config {
        image   = var.builder_image
        command = "conveyor"
        args    = ["builder", "--parallel", "${var.parallel_builds}"]
        ports   = ["relay"]
      }

      env {
        CONVEYOR_BLOBS__URL    = var.blobs_url
        CONVEYOR_BLOBS__REGION = var.region
        AWS_REGION             = var.region

        CONVEYOR_BUILDS__BUILDER                 = "buildkit"
        CONVEYOR_BUILDS__BUILDKIT_ADDRESS        = "tcp://127.0.0.1:1234"
        CONVEYOR_BUILDS__BASE_IMAGE              = var.base_image
        CONVEYOR_BUILDS__REGISTRY                = var.workflows_repository_url
        CONVEYOR_BUILDS__REPOSITORY_PER_WORKFLOW = "false"
        CONVEYOR_BUILDS__CACHE                   = "registry"
        CONVEYOR_BUILDS__CACHE_REPOSITORY        = var.build_cache_repository_url
        CONVEYOR_BUILDS__REGISTRY_AUTH           = "ecr"
        CONVEYOR_BUILDS__ECR_REGION              = var.region

        CONVEYOR_EXECUTOR__KIND       = "nomad"
        CONVEYOR_NOMAD__ADDRESS       = var.nomad_addr
        CONVEYOR_NOMAD__CA_CERT       = "${NOMAD_SECRETS_DIR}/nomad-ca.pem"
        CONVEYOR_NOMAD__DATACENTERS   = jsonencode(var.datacenters)
        CONVEYOR_NOMAD__AGENT_IMAGE   = var.agent_image
        CONVEYOR_BUILDER__LISTEN_HOST = "0.0.0.0"
        CONVEYOR_BUILDER__LISTEN_PORT = "8121"
        # where a register step's sidecar, on a worker node, reaches this allocation
        CONVEYOR_BUILDER__ADVERTISE_URL      = "http://${NOMAD_ADDR_relay}"
        CONVEYOR_BUILDER__STOP_GRACE_SECONDS = "240"
        CONVEYOR_GITHUB__PRIVATE_KEY_PATH    = "${NOMAD_SECRETS_DIR}/github-app.pem"
      }

      template {
        destination = "${NOMAD_SECRETS_DIR}/conveyor.env"
        env         = true
        change_mode = "restart"
        data        = <<-EOT
          {{ with nomadVar "nomad/jobs/conveyor-builder" }}
          CONVEYOR_DATABASE__URL={{ .database_url }}
          CONVEYOR_NOMAD__TOKEN={{ .nomad_token }}
          CONVEYOR_NOMAD__ATTEMPT_TOKEN_SECRET={{ .attempt_token_secret }}
          CONVEYOR_BUILDS__SECRETS_KEY={{ .secrets_key }}
          {{ with .github_app_id }}
          CONVEYOR_GITHUB__APP_ID={{ . }}
          {{ end }}
          {{ end }}
        EOT
      }

      template {
        destination = "${NOMAD_SECRETS_DIR}/github-app.pem"
        perms       = "0400"
        change_mode = "restart"
        data        = <<-EOT
          {{ with nomadVar "nomad/jobs/conveyor-builder" }}{{ .github_private_key }}{{ end }}
        EOT
      }

      # the CA of the Nomad API's certificate: the executor verifies it (docs/nomad.md, TLS)
      template {
        destination = "${NOMAD_SECRETS_DIR}/nomad-ca.pem"
        perms       = "0400"
        change_mode = "restart"
        data        = <<-EOT
          {{ with nomadVar "nomad/jobs/conveyor-builder" }}{{ .nomad_ca_cert }}{{ end }}
        EOT
      }

      resources {
        cpu    = 1000
        memory = 1024
      }

      # SIGTERM: builds in progress get CONVEYOR_BUILDER__STOP_GRACE_SECONDS to finish, then go
      # back to the queue; this is a little longer. A Nomad client caps every kill_timeout at its
      # `max_kill_timeout` (30s unless configured): builder nodes need
      # `client { max_kill_timeout = "300s" }`, or builds in progress are killed after 30s.
      kill_timeout = "270s"
    }
  }
}
