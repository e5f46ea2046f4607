#!/usr/bin/env node
/**
 * Offline install of terraform-provider-mayastor: builds the TypeScript (unless --no-build), places a shim
 * executable in a filesystem mirror laid out as Terraform expects
 *   MIRROR/registry.terraform.io/mayastor/mayastor/VERSION/OS_ARCH/terraform-provider-mayastor_vVERSION
 * and writes a CLI config whose provider_installation uses that mirror for mayastor/* and `direct` for the rest.
 *
 *   npm run install-provider [-- --mirror DIR] [--cli-config FILE] [--no-build]
 *   export TF_CLI_CONFIG_FILE=<printed path>; terraform init
 *
 * The shim only execs this checkout's launcher (or node on bin/terraform-provider-mayastor when the launcher is not
 * built; that loader runs the bundle dist/provider.bundle.js with its code cache, see provider/launcher/bundle.js),
 * so its hash (recorded by `terraform init` in .terraform.lock.hcl) stays stable while the provider changes.
 */
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const { execFileSync } = require('node:child_process');

const root = path.resolve(__dirname, '..');
const version = require(path.join(root, 'package.json')).version;

function arg(name, dflt) {
  const i = process.argv.indexOf(name);
  if (i === -1) return dflt;
  const v = process.argv[i + 1];
  if (!v || v.startsWith('--')) {
    console.error(`install-provider: ${name} needs a value`);
    process.exit(2);
  }
  return path.resolve(v);
}

const mirror = arg('--mirror', path.join(root, 'dist', 'terraform-mirror'));
const cliConfig = arg('--cli-config', path.join(root, 'dist', 'terraformrc'));
const build = !process.argv.includes('--no-build');

const osName = { linux: 'linux', darwin: 'darwin', win32: 'windows', freebsd: 'freebsd' }[process.platform] || process.platform;
const arch = { x64: 'amd64', arm64: 'arm64', ia32: '386', arm: 'arm' }[process.arch] || process.arch;

if (build) {
  try {
    execFileSync(process.execPath, [path.join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', path.join(root, 'tsconfig.json')], { stdio: 'inherit' });
  } catch {
    // tsc still emits on type errors elsewhere in the tree; only a missing entry point is fatal
    console.error('install-provider: tsc reported errors (see above); continuing if the provider was emitted');
  }
}
if (build) {
  // the provider in one file with its V8 code cache: what makes a cold start fast (provider/launcher/bundle.js)
  try {
    execFileSync(process.execPath, [path.join(root, 'provider', 'launcher', 'bundle.js')], { stdio: 'inherit' });
  } catch {
    console.error('install-provider: bundling failed (see above); the provider runs from dist/provider/main.js');
  }
}
if (!fs.existsSync(path.join(root, 'dist', 'provider', 'main.js'))) {
  console.error(`install-provider: ${path.join(root, 'dist', 'provider', 'main.js')} is missing; the TypeScript build failed`);
  process.exit(1);
}
// bin/terraform-provider-mayastor runs dist/provider.bundle.js with its code cache (or dist/provider/main.js)
const entry = path.join(root, 'bin', 'terraform-provider-mayastor');

const pkgDir = path.join(mirror, 'registry.terraform.io', 'mayastor', 'mayastor', version, `${osName}_${arch}`);
fs.mkdirSync(pkgDir, { recursive: true });
for (const f of fs.readdirSync(pkgDir)) fs.rmSync(path.join(pkgDir, f), { force: true, recursive: true });
const exe = path.join(pkgDir, `terraform-provider-mayastor_v${version}`);
const q = (s) => `'${s.replace(/'/g, `'\\''`)}'`;
// The launcher (provider/launcher, built by `npm run build:native`) hands the session to a warm provider daemon;
// without it the shim runs node directly. Either way the shim's bytes (and its lock-file hash) stay the same.
const launcher = path.join(root, 'provider', 'launcher', 'build', 'mayastor-provider-launcher');
fs.writeFileSync(
  exe,
  `#!/bin/sh\nL=${q(launcher)}\n[ -x "$L" ] && exec "$L" ${q(process.execPath)} ${q(entry)} "$@"\nexec ${q(process.execPath)} ${q(entry)} "$@"\n`,
  { mode: 0o755 },
);

fs.mkdirSync(path.dirname(cliConfig), { recursive: true });
fs.writeFileSync(
  cliConfig,
  `# written by npm run install-provider\nprovider_installation {\n` +
    `  filesystem_mirror {\n    path    = ${JSON.stringify(mirror)}\n    include = ["registry.terraform.io/mayastor/*"]\n  }\n` +
    `  direct {\n    exclude = ["registry.terraform.io/mayastor/*"]\n  }\n}\n`,
);
console.log(`installed ${exe}`);
console.log(`CLI config ${cliConfig}`);
console.log(`use it with:  export TF_CLI_CONFIG_FILE=${cliConfig}`);
