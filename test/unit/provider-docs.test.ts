/** docs/ is generated from the schema (provider/docs.ts); this fails when they drift apart. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { generateDocs } from '../../provider/docs';
import { makeProvider, providerSchema } from '../../provider/provider';
import { checkSchema } from '../../provider/protocol/schema';

const docsDir = path.resolve(__dirname, '..', '..', 'docs');
const regen = 'regenerate with: npx tsc -p tsconfig.json && node dist/provider/docs.js';

test.each(Object.entries(generateDocs()))('docs/%s matches the schema', (rel, text) => {
  const p = path.join(docsDir, rel);
  expect(fs.existsSync(p) ? fs.readFileSync(p, 'utf8') : `(missing: ${regen})`).toBe(text);
});

test('every resource and data source has a page and every attribute a description', () => {
  const def = makeProvider();
  const files = Object.keys(generateDocs());
  expect(files).toEqual(
    expect.arrayContaining(['index.md', 'resources/pool.md', 'resources/replica.md', 'resources/nexus.md', 'data-sources/node.md', 'data-sources/pools.md']),
  );
  const errs = [
    ...checkSchema('provider', providerSchema),
    ...def.resources.flatMap((r) => checkSchema(r.typeName, r.schema)),
    ...def.dataSources.flatMap((d) => checkSchema(d.typeName, d.schema)),
  ];
  expect(errs).toEqual([]);
});
