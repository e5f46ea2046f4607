# The quickstart in plain HCL: three agents, one pool each, one 3-way replicated volume exported over NBD.
# Same resources as examples/quickstart (CDKTF); see README.md for running it.

terraform {
  required_version = ">= 1.8" # provider-defined functions (replica_size)
  required_providers {
    mayastor = {
      source  = "mayastor/mayastor"
      version = "~> 0.1"
    }
  }
}

variable "nodes" {
  description = "Agents by node name: their URL and the file or block device their pool claims."
  type = map(object({
    url  = string
    disk = string
  }))
}

variable "nexus_node" {
  description = "Node that runs the nexus (it must be one of var.nodes)."
  type        = string
}

variable "volume_uuid" {
  type    = string
  default = "5a1e0c3d-7f0b-4c2e-9d7a-0b1c2d3e4f50"
}

variable "size_bytes" {
  type    = number
  default = 67108864 # 64 MiB
}

# The token comes from $MAYASTOR_TOKEN (or set token = ... here; it is sensitive).
provider "mayastor" {
  nodes = { for name, n in var.nodes : name => n.url }
}

resource "mayastor_pool" "pool" {
  for_each = var.nodes
  node     = each.key
  name     = "pool-${each.key}"
  disks    = [each.value.disk]
}

# No uuid on the replicas: the provider generates one at create and keeps it.
resource "mayastor_replica" "replica" {
  for_each   = var.nodes
  node       = each.key
  pool       = mayastor_pool.pool[each.key].name
  size_bytes = provider::mayastor::replica_size(var.size_bytes) # the volume plus the nexus label every child holds
  thin       = true
  # the nexus reaches its local replica as bdev:///UUID; the others are shared over NBD
  share = each.key == var.nexus_node ? "none" : "nbd"

  # a replica leaving the configuration is removed from the nexus before it is deleted
  lifecycle {
    create_before_destroy = true
  }
}

resource "mayastor_nexus" "volume" {
  node       = var.nexus_node
  uuid       = var.volume_uuid
  size_bytes = var.size_bytes
  children   = [for name in sort(keys(var.nodes)) : mayastor_replica.replica[name].uri]
  share      = "nbd"
}

output "device_uri" {
  description = "Where consumers connect: nbd://HOST:PORT/UUID."
  value       = mayastor_nexus.volume.device_uri
}
