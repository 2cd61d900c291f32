/**
 * `npm run ecs:docs`: writes the table of ECS fields in docs/events.md from ECS's own
 * definitions (@elastic/ecs) and Vigil's templates. It lives with the tests, not in scripts/,
 * because @elastic/ecs is a development dependency and scripts/ is built into the CLI;
 * test/unit/ecs-conformance.test.ts fails when the page lags behind.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { alertMappings, detectionMappings, eventMappings, pipelineMappings } from '../../schemas';
import { renderEcsFieldTable, replaceEcsFieldTable } from './ecs';

const page = join(__dirname, '..', '..', 'docs', 'events.md');
const table = renderEcsFieldTable({ events: eventMappings, detections: detectionMappings, alerts: alertMappings, pipeline: pipelineMappings });
writeFileSync(page, replaceEcsFieldTable(readFileSync(page, 'utf8'), table));
