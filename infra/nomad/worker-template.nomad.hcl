# What the Nomad executor registers once per workflow version and plan (DESIGN.md §4). The executor
# builds it in scheduler/executors/nomad_jobs.py (the API's JSON form); this file is the same job
# in HCL for people to read, and tests/unit/infra checks that the two agree. Each attempt is one
# `nomad job dispatch`:
#
#   payload  JSON {"attempt_id", "token", "control_plane_url"}: the token is scoped to one attempt
#   meta     attempt_id, run_id, attempt (0-indexed), mode (run | register)
#
# Two tasks share the allocation directory. `conveyor agent` starts first (prestart sidecar), serves
# the unix socket ${NOMAD_ALLOC_DIR}/conveyor.sock and relays the instance protocol to the control
# plane; the worker runs the version's start command with RENDER_SDK_SOCKET_PATH pointing at it.
# Retries belong to the scheduler, so Nomad never restarts or reschedules an attempt.
#
# Both tasks run as a non-root user (the control-plane image's `conveyor`, uid 10001: the worker
# must be able to connect to the socket the sidecar creates), with every capability dropped, no
# privilege escalation, a pids limit and a read-only root filesystem with a tmpfs /tmp. They use
# `entrypoint`, not `command`: a docker `command` runs after the image's ENTRYPOINT, as its
# argument. Needs Nomad 1.5 or later (the datacenter wildcard).

variable "job_id" {
  description = "conveyor-<version id>-<plan> (settings: nomad.job_prefix)."
  type        = string
}

variable "version_id" {
  description = "Workflow version (wfv-…)."
  type        = string
}

variable "plan" {
  description = "Plan name; a job per version and plan, since a group's resources are fixed."
  type        = string
  default     = "standard"
}

variable "image" {
  description = "The version's image, built and pushed by the builder."
  type        = string
}

variable "start_command" {
  description = "The version's start command, split into words."
  type        = list(string)
  default     = ["conveyor-worker", "main:app"]
}

variable "agent_image" {
  description = "Control-plane image (settings: nomad.agent_image), pinned by tag or digest: Nomad pulls a :latest tag on every start."
  type        = string
}

variable "namespace" {
  description = "settings: nomad.namespace."
  type        = string
  default     = "default"
}

variable "task_user" {
  description = "uid:gid both tasks run as (settings: nomad.task_user)."
  type        = string
  default     = "10001:10001"
}

variable "pids_limit" {
  description = "Processes a task's container may hold (settings: nomad.pids_limit)."
  type        = number
  default     = 1024
}

variable "tmp_size_bytes" {
  description = "Size of each task's tmpfs /tmp (settings: nomad.tmp_size_mb x 1 MiB)."
  type        = number
  default     = 268435456
}

variable "cpu_mhz" {
  description = "The plan's cores x nomad.cpu_mhz_per_core."
  type        = number
  default     = 2000
}

variable "memory_mb" {
  description = "The plan's memory."
  type        = number
  default     = 2048
}

variable "agent_cpu_mhz" {
  description = "settings: nomad.agent_cpu_mhz."
  type        = number
  default     = 100
}

variable "agent_memory_mb" {
  description = "settings: nomad.agent_memory_mb."
  type        = number
  default     = 64
}

variable "kill_timeout" {
  description = "TERM, then KILL after this (settings: executor.kill_grace_seconds)."
  type        = string
  default     = "5s"
}

variable "datacenters" {
  type    = list(string)
  default = ["*"]
}

job "conveyor-worker-template" {
  id          = var.job_id
  namespace   = var.namespace
  type        = "batch"
  datacenters = var.datacenters

  meta {
    conveyor_version_id = var.version_id
    conveyor_plan       = var.plan
  }

  parameterized {
    payload       = "required"
    meta_required = ["attempt_id", "run_id", "attempt", "mode"]
  }

  group "attempt" {
    count = 1

    restart {
      attempts = 0
      mode     = "fail"
      interval = "24h"
      delay    = "15s"
    }

    reschedule {
      attempts       = 0
      unlimited      = false
      interval       = "0s"
      delay          = "0s"
      delay_function = "constant"
      max_delay      = "0s"
    }

    task "agent" {
      driver = "docker"
      user   = var.task_user

      lifecycle {
        hook    = "prestart"
        sidecar = true
      }

      # Written to the agent's local/ only: the worker's container never sees the token.
      dispatch_payload {
        file = "relay.json"
      }

      config {
        image      = var.agent_image
        entrypoint = ["conveyor"]
        # Defaults: --socket ${NOMAD_ALLOC_DIR}/conveyor.sock, --payload ${NOMAD_TASK_DIR}/relay.json
        args = ["agent"]

        cap_drop        = ["ALL"]
        security_opt    = ["no-new-privileges"]
        pids_limit      = var.pids_limit
        readonly_rootfs = true

        mount {
          type     = "tmpfs"
          target   = "/tmp"
          readonly = false
          tmpfs_options {
            size = var.tmp_size_bytes
          }
        }
      }

      env {
        PYTHONUNBUFFERED = "1"
      }

      resources {
        cpu    = var.agent_cpu_mhz
        memory = var.agent_memory_mb
      }

      # It must outlive the worker's last callback, so it stops after the worker.
      kill_timeout = var.kill_timeout
    }

    task "worker" {
      driver = "docker"
      user   = var.task_user

      config {
        image      = var.image
        entrypoint = ["/bin/sh"]
        # Nomad starts the worker once the sidecar has started, not once it serves: wait (<= 30 s)
        # for the socket, then run the start command.
        args = concat([
          "-c",
          "i=0; while [ ! -S \"$RENDER_SDK_SOCKET_PATH\" ] && [ \"$i\" -lt 600 ]; do sleep 0.05; i=$((i+1)); done; exec \"$@\"",
          "conveyor-wait-for-agent",
        ], var.start_command)

        cap_drop        = ["ALL"]
        security_opt    = ["no-new-privileges"]
        pids_limit      = var.pids_limit
        readonly_rootfs = true

        mount {
          type     = "tmpfs"
          target   = "/tmp"
          readonly = false
          tmpfs_options {
            size = var.tmp_size_bytes
          }
        }
      }

      env {
        # uid 10001 has no home in the image, and the root is read-only
        HOME                   = "/tmp"
        PYTHONUNBUFFERED       = "1"
        RENDER_SDK_MODE        = "${NOMAD_META_mode}"
        RENDER_SDK_SOCKET_PATH = "${NOMAD_ALLOC_DIR}/conveyor.sock"
        CONVEYOR_TASK_RUN_ID   = "${NOMAD_META_run_id}"
        CONVEYOR_ATTEMPT       = "${NOMAD_META_attempt}"
      }

      resources {
        cpu    = var.cpu_mhz
        memory = var.memory_mb
      }

      kill_timeout = var.kill_timeout
    }
  }
}
