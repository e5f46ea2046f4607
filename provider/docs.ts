/**
 * Generates docs/ (Terraform registry layout) from the provider schema, so the docs cannot drift:
 * test/unit/provider-docs.test.ts fails when docs/ differs from what this produces.
 *
 *   npx tsc -p tsconfig.json && node dist/provider/docs.js      # rewrite docs/index.md, resources/, data-sources/, functions/
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CtyType } from './protocol/cty';
import { AttributeSchema, BlockSchema } from './protocol/schema';
import { FunctionDef } from './protocol/functions';
import { makeProvider, providerSchema } from './provider';

function typeName(t: CtyType): string {
  if (typeof t === 'string') return t === 'bool' ? 'Boolean' : t[0].toUpperCase() + t.slice(1);
  switch (t[0]) {
    case 'list':
      return `List of ${typeName(t[1])}`;
    case 'set':
      return `Set of ${typeName(t[1])}`;
    case 'map':
      return `Map of ${typeName(t[1])}`;
    case 'object':
      return 'Object';
    case 'tuple':
      return 'Tuple';
  }
  return 'Dynamic';
}

function attrLine(name: string, a: AttributeSchema): string {
  const flags: string[] = [a.nested ? 'Attributes' : typeName(a.type)];
  if (a.sensitive) flags.push('Sensitive');
  if (a.requiresReplace) flags.push('Forces replacement');
  if (a.default !== undefined) flags.push(`Default \`${JSON.stringify(a.default)}\``);
  const more = a.nested ? ` (see [below for nested schema](#nestedatt--${name}))` : '';
  return `- \`${name}\` (${flags.join(', ')}) ${a.description}${more}`;
}

function sections(b: BlockSchema): string {
  const groups: [string, (a: AttributeSchema) => boolean][] = [
    ['Required', (a) => !!a.required],
    ['Optional', (a) => !!a.optional],
    ['Read-Only', (a) => !!a.computed && !a.optional],
  ];
  let s = '';
  for (const [title, pick] of groups) {
    const names = Object.keys(b.attributes)
      .filter((k) => pick(b.attributes[k]))
      .sort();
    if (!names.length) continue;
    s += `### ${title}\n\n${names.map((k) => attrLine(k, b.attributes[k])).join('\n')}\n\n`;
  }
  // nested attributes, each under its anchor, as the registry's generated docs lay them out
  for (const [k, a] of Object.entries(b.attributes).sort(([x], [y]) => (x < y ? -1 : 1))) {
    if (!a.nested) continue;
    s += `<a id="nestedatt--${k}"></a>\n### Nested Schema for \`${k}\`\n\n`;
    s += sections({ description: a.description, attributes: a.nested }).replace(/^### (Required|Optional|Read-Only)\n/gm, '$1:\n');
  }
  return s;
}

function hclBody(b: BlockSchema, indent = '  '): string {
  // what a user writes: required arguments and optional ones with a default; an optional+computed argument without
  // one (a uuid the provider generates) is left out, as users leave it out
  const entries = Object.entries(b.attributes).filter(([, a]) => a.example !== undefined && (!a.computed || a.default !== undefined));
  const width = Math.max(0, ...entries.map(([k]) => k.length));
  return entries.map(([k, a]) => `${indent}${k.padEnd(width)} = ${a.example}`).join('\n');
}

const frontMatter = (title: string, subcategory: string, description: string) =>
  `---\npage_title: "${title}"\nsubcategory: "${subcategory}"\ndescription: |-\n  ${description.split('\n')[0]}\n---\n\n`;

export function generateDocs(): Record<string, string> {
  const def = makeProvider();
  const files: Record<string, string> = {};
  files['index.md'] =
    frontMatter('Provider: mayastor', '', providerSchema.description) +
    '# mayastor Provider\n\n' +
    `${providerSchema.description} Storage lifecycle lives in Terraform state: pools on each node's disks, replicas carved out of pools, ` +
    'and nexuses that mirror one volume onto several replicas and export it over NBD, iSCSI or NVMe/TCP.\n\n' +
    '## Example Usage\n\n```terraform\nterraform {\n  required_providers {\n    mayastor = { source = "mayastor/mayastor" }\n  }\n}\n\n' +
    `provider "mayastor" {\n${hclBody(providerSchema)}\n  # token from MAYASTOR_TOKEN\n}\n\`\`\`\n\n` +
    '## Installing without a registry\n\n`npm run install-provider` builds the provider, places it in a filesystem mirror ' +
    '(`dist/terraform-mirror/registry.terraform.io/mayastor/mayastor/VERSION/OS_ARCH/`) and writes a CLI config (`dist/terraformrc`). ' +
    'Point Terraform at it with `export TF_CLI_CONFIG_FILE=$PWD/dist/terraformrc`; `terraform init` then works offline. ' +
    'Options: `--mirror DIR`, `--cli-config FILE`, `--no-build`.\n\n' +
    '## Provider daemon\n\nTerraform starts a provider three times per `terraform plan`. The installed executable is a small launcher ' +
    'that hands each start to one warm provider process (a unix socket under `$XDG_RUNTIME_DIR/mayastor-provider/`, or ' +
    '`/tmp/mayastor-provider-UID/`), each as its own session with its own environment, port and certificate. The daemon leaves ' +
    'after `MAYASTOR_PROVIDER_DAEMON_IDLE_SECONDS` (default 300) without a session; `MAYASTOR_PROVIDER_DAEMON=off` starts the ' +
    'provider directly for every launch.\n\n' +
    '## Schema\n\n' +
    sections(providerSchema) +
    '## Resources\n\n' +
    def.resources.map((r) => `- [${r.typeName}](resources/${r.typeName.replace(/^mayastor_/, '')}.md)`).join('\n') +
    '\n\n' +
    '## Data Sources\n\n' +
    def.dataSources.map((d) => `- [${d.typeName}](data-sources/${d.typeName.replace(/^mayastor_/, '')}.md)`).join('\n') +
    '\n' +
    (def.functions?.length
      ? '\n## Functions\n\nProvider-defined functions need Terraform 1.8 or later.\n\n' +
        def.functions.map((f) => `- [${f.name}](functions/${f.name}.md): ${f.summary}`).join('\n') +
        '\n'
      : '');

  for (const r of def.resources) {
    const short = r.typeName.replace(/^mayastor_/, '');
    const importId = r.typeName === 'mayastor_pool' ? 'NODE/NAME' : 'NODE/UUID';
    const exampleId = r.typeName === 'mayastor_pool' ? 'node-a/pool-a' : `node-a/${(r.schema.attributes.uuid?.example ?? '"UUID"').replace(/"/g, '')}`;
    files[`resources/${short}.md`] =
      frontMatter(`${r.typeName} Resource - mayastor`, '', r.schema.description) +
      `# ${r.typeName} (Resource)\n\n${r.schema.description}\n\n` +
      `## Example Usage\n\n\`\`\`terraform\nresource "${r.typeName}" "example" {\n${hclBody(r.schema)}\n}\n\`\`\`\n\n` +
      '## Schema\n\n' +
      sections(r.schema) +
      `## Import\n\nImport by \`${importId}\`:\n\n\`\`\`shell\nterraform import ${r.typeName}.example ${exampleId}\n\`\`\`\n\n` +
      `or with an import block:\n\n\`\`\`terraform\nimport {\n  to = ${r.typeName}.example\n  id = "${exampleId}"\n}\n\`\`\`\n`;
  }
  for (const d of def.dataSources) {
    const short = d.typeName.replace(/^mayastor_/, '');
    files[`data-sources/${short}.md`] =
      frontMatter(`${d.typeName} Data Source - mayastor`, '', d.schema.description) +
      `# ${d.typeName} (Data Source)\n\n${d.schema.description}\n\n` +
      `## Example Usage\n\n\`\`\`terraform\ndata "${d.typeName}" "example" {\n${hclBody(d.schema)}\n}\n\`\`\`\n\n` +
      '## Schema\n\n' +
      sections(d.schema);
  }
  for (const f of def.functions ?? []) files[`functions/${f.name}.md`] = functionPage(f);
  return files;
}

/** A function's page, in the registry's layout for provider-defined functions. */
function functionPage(f: FunctionDef): string {
  const params = f.parameters.map((p) => `${p.name} ${typeName(p.type).toLowerCase()}`).join(', ');
  return (
    frontMatter(`${f.name} function - mayastor`, '', f.summary) +
    `# function: ${f.name}\n\n${f.description}\n\n` +
    `## Example Usage\n\n\`\`\`terraform\n${f.example}\n\`\`\`\n\n` +
    `## Signature\n\n\`\`\`text\n${f.name}(${params}) ${typeName(f.returns).toLowerCase()}\n\`\`\`\n\n` +
    '## Arguments\n\n' +
    f.parameters.map((p, i) => `${i + 1}. \`${p.name}\` (${typeName(p.type)}) ${p.description}`).join('\n') +
    '\n'
  );
}

/** Writes the generated files under `dir` (default: the repository's docs/). */
export function writeDocs(dir: string): string[] {
  const files = generateDocs();
  for (const [rel, text] of Object.entries(files)) {
    const p = path.join(dir, rel);
    fs.mkdirSync(path.dirname(p), { recursive: true });
    fs.writeFileSync(p, text);
  }
  return Object.keys(files);
}

if (require.main === module) {
  // dist/provider/docs.js → repository root is two levels up
  const dir = process.argv[2] ?? path.resolve(__dirname, '..', '..', 'docs');
  for (const f of writeDocs(dir)) console.log(`wrote ${path.join(dir, f)}`);
}
