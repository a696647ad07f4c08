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
  description = "Control-plane image (settings: nomad.agent_image); it provides `conveyor agent`."
  type        = string
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

variable "datacenters" {
  type    = list(string)
  default = ["*"]
}

job "conveyor-worker-template" {
  id          = var.job_id
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
    }

    reschedule {
      attempts  = 0
      unlimited = false
    }

    task "agent" {
      driver = "docker"

      lifecycle {
        hook    = "prestart"
        sidecar = true
      }

      # Written to the agent's local/ only: the worker's container never sees the token.
      dispatch_payload {
        file = "relay.json"
      }

      config {
        image   = var.agent_image
        command = "conveyor"
        # Defaults: --socket ${NOMAD_ALLOC_DIR}/conveyor.sock, --payload ${NOMAD_TASK_DIR}/relay.json
        args = ["agent"]
      }

      env {
        PYTHONUNBUFFERED = "1"
      }

      resources {
        cpu    = 100
        memory = 64
      }

      # It must outlive the worker's last callback, so it stops after the worker.
      kill_timeout = "5s"
    }

    task "worker" {
      driver = "docker"

      config {
        image   = var.image
        command = var.start_command[0]
        args    = slice(var.start_command, 1, length(var.start_command))
      }

      env {
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

      # TERM, then KILL after the grace period (settings: executor.kill_grace_seconds).
      kill_timeout = "5s"
    }
  }
}
