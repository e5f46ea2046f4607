# terraform test: apply a pool and a replica against real agents, check what the provider reports, and check that
# bad input is refused at plan. Variables come from the command line or a .tfvars file:
#   MAYASTOR_TOKEN=... terraform test -var 'nodes={ node-a = { url = "http://127.0.0.1:9501", disk = "/path/disk.img" } }'

run "pool_and_replica" {
  command = apply

  assert {
    condition     = mayastor_pool.pool.state == "online"
    error_message = "the pool is not online"
  }

  assert {
    condition     = mayastor_replica.replica.size_bytes == var.volume_bytes + 1048576
    error_message = "replica_size did not add the 1 MiB nexus label to the volume"
  }

  assert {
    condition     = startswith(mayastor_replica.replica.uri, "bdev:///") && mayastor_replica.replica.share == "none"
    error_message = "an unshared replica is reached as bdev:///UUID"
  }

  assert {
    condition     = mayastor_replica.replica.thin && mayastor_replica.replica.allocated_bytes < mayastor_replica.replica.size_bytes
    error_message = "a fresh thin replica allocates less than its size"
  }
}

run "grows_in_place" {
  command = apply

  variables {
    volume_bytes = 33554432
  }

  assert {
    condition     = mayastor_replica.replica.size_bytes == 33554432 + 1048576
    error_message = "the replica did not grow"
  }
}

run "unaligned_size_is_refused" {
  command = plan

  variables {
    volume_bytes = 1000
  }

  expect_failures = [var.volume_bytes]
}

run "negative_size_is_refused" {
  command = plan

  variables {
    volume_bytes = -4096
  }

  expect_failures = [var.volume_bytes]
}
