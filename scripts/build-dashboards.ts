import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { savedObjects, toNdjson } from '../dashboards';

/**
 * `npm run dashboards:build`: renders dashboards/vigil.ndjson from the typed definitions in
 * dashboards/src. The file is generated, never edited; a unit test checks it is current.
 */
const objects = savedObjects('vigil');
const out = join(__dirname, '..', 'dashboards', 'vigil.ndjson');
writeFileSync(out, toNdjson(objects));
console.log(`wrote ${objects.length} saved objects to ${out}`);
