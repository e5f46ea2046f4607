# A pool and a replica on one node, with the checks a module's users rely on. `terraform test` runs
# tests/replica.tftest.hcl against real agents (see README.md next to this file).
terraform {
  required_version = ">= 1.8"
  required_providers {
    mayastor = { source = "mayastor/mayastor" }
  }
}

variable "nodes" {
  description = "Agents by node name: their URL and the file or block device their pool claims (the shape every example takes). The token comes from MAYASTOR_TOKEN."
  type = map(object({
    url  = string
    disk = string
  }))
}

variable "node" {
  description = "The node that holds the pool (a key of var.nodes); the first one when not set."
  type        = string
  default     = null
}

locals {
  node = coalesce(var.node, sort(keys(var.nodes))[0])
}

variable "volume_bytes" {
  description = "Size of the volume the replica will back (a nexus child holds it plus the nexus label)."
  type        = number
  default     = 16777216

  validation {
    condition     = var.volume_bytes > 0 && var.volume_bytes % 512 == 0
    error_message = "volume_bytes must be a positive multiple of 512."
  }
}

provider "mayastor" {
  nodes = { for name, n in var.nodes : name => n.url }
}

resource "mayastor_pool" "pool" {
  node  = local.node
  name  = "tftest"
  disks = [var.nodes[local.node].disk]
}

resource "mayastor_replica" "replica" {
  node       = local.node
  pool       = mayastor_pool.pool.name
  size_bytes = provider::mayastor::replica_size(var.volume_bytes)
  thin       = true
}

output "replica_uri" {
  value = mayastor_replica.replica.uri
}
