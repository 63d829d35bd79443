import { readFile } from 'node:fs/promises';
import { GatewayError } from '../errors.js';
import { STATE_SCHEMA_VERSION, type StateDocument } from './schema.js';

/** Reads and sanity-checks gateway_state.json for `status`; never writes it. */
export async function readStateFile(path: string): Promise<StateDocument> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    const errno = (err as NodeJS.ErrnoException).code ?? 'unknown';
    throw new GatewayError('GW_ERR_STATE_READ', `cannot read state file ${path}: ${errno}`, {
      cause: err,
      details: { path, errno },
    });
  }
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new GatewayError('GW_ERR_STATE_READ', `state file ${path} is not valid JSON`, {
      cause: err,
      details: { path },
    });
  }
  if (
    typeof doc !== 'object' ||
    doc === null ||
    (doc as { schema_version?: unknown }).schema_version !== STATE_SCHEMA_VERSION
  ) {
    throw new GatewayError(
      'GW_ERR_STATE_READ',
      `state file ${path} has an unknown schema (expected schema_version ${STATE_SCHEMA_VERSION})`,
      { details: { path } },
    );
  }
  return doc as StateDocument;
}
