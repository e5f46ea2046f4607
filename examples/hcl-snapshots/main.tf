# Snapshots and clones in plain HCL, on one node (var.nexus_node): a 2-way mirrored volume, a consistent snapshot of
# it (mayastor_volume_snapshot), and a second volume restored from that snapshot (a new nexus over a clone of each
# replica's part of it); plus a snapshot of a lone replica, exported read-only over NBD, and a clone of it.
#
# A volume snapshot needs every child to be local to the nexus or reached over nvmf: an nbd:// child cannot be
# snapshotted (the snapshot fails naming it). Here every replica is on the nexus node.

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
  description = "Node that holds the pool, the replicas and the nexuses (it must be one of var.nodes)."
  type        = string
}

variable "size_bytes" {
  type    = number
  default = 16777216 # 16 MiB
}

# The token comes from $MAYASTOR_TOKEN.
provider "mayastor" {
  nodes = { for name, n in var.nodes : name => n.url }
}

resource "mayastor_pool" "pool" {
  node  = var.nexus_node
  name  = "snapshots"
  disks = [var.nodes[var.nexus_node].disk]
}

resource "mayastor_replica" "volume" {
  count      = 2
  node       = var.nexus_node
  pool       = mayastor_pool.pool.name
  size_bytes = provider::mayastor::replica_size(var.size_bytes)
  thin       = true
}

resource "mayastor_nexus" "volume" {
  node       = var.nexus_node
  size_bytes = var.size_bytes
  children   = mayastor_replica.volume[*].uri
  share      = "nbd"
}

# The nexus holds its I/O (at most deadline_ms) while both replicas are snapshotted at the same point.
resource "mayastor_volume_snapshot" "daily" {
  node        = var.nexus_node
  nexus_uuid  = mayastor_nexus.volume.uuid
  deadline_ms = 5000
  timeouts    = { create = "1m", delete = "1m" }
}

# The restored volume: a thin clone of each replica's part of the snapshot (same node and pool), a new nexus over them.
resource "mayastor_replica" "restored" {
  count           = 2
  node            = var.nexus_node
  pool            = mayastor_pool.pool.name
  size_bytes      = provider::mayastor::replica_size(var.size_bytes)
  source_snapshot = mayastor_volume_snapshot.daily.snapshot_uuids[mayastor_replica.volume[count.index].uuid]
}

resource "mayastor_nexus" "restored" {
  node       = var.nexus_node
  size_bytes = var.size_bytes
  children   = mayastor_replica.restored[*].uri
  share      = "nbd"
}

# One replica's snapshot, and a clone of it exported over NBD.
resource "mayastor_replica" "scratch" {
  node       = var.nexus_node
  pool       = mayastor_pool.pool.name
  size_bytes = 8388608
  thin       = true
}

resource "mayastor_snapshot" "scratch" {
  node         = var.nexus_node
  replica_uuid = mayastor_replica.scratch.uuid
  share        = "nbd" # read-only: e.g. qemu-img convert it off while the replica takes writes
}

resource "mayastor_replica" "scratch_clone" {
  node            = var.nexus_node
  pool            = mayastor_snapshot.scratch.pool
  size_bytes      = mayastor_snapshot.scratch.size_bytes
  share           = "nbd"
  source_snapshot = mayastor_snapshot.scratch.uuid
}

output "device_uri" {
  value = mayastor_nexus.volume.device_uri
}

output "restored_device_uri" {
  description = "The volume as it was when mayastor_volume_snapshot.daily was taken."
  value       = mayastor_nexus.restored.device_uri
}

output "snapshot_uri" {
  value = mayastor_snapshot.scratch.uri
}

output "snapshot_parts" {
  description = "Replica uuid -> the uuid of its snapshot in mayastor_volume_snapshot.daily."
  value       = mayastor_volume_snapshot.daily.snapshot_uuids
}

output "clone_uri" {
  value = mayastor_replica.scratch_clone.uri
}
