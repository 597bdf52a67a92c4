// Checks HTTP answers against docs/openapi.yaml: finds the operation's
// documented response for the status, validates the body with Ajv (JSON
// Schema 2020-12, the dialect of OpenAPI 3.1, strict mode) and the documented
// headers, and records which (operation, status) pairs and error codes were
// seen, so a test can tell what it has not covered.
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import Ajv2020 from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import YAML from 'yaml';

const here = dirname(fileURLToPath(import.meta.url));
export const SPEC_PATH = resolve(here, '../../../docs/openapi.yaml');
export const API_MD_PATH = resolve(here, '../../../docs/api.md');
const DEFS_ID = 'aq-openapi';
const METHODS = ['get', 'put', 'post', 'delete', 'patch', 'head', 'options'];

export function loadSpec() {
  return YAML.parse(readFileSync(SPEC_PATH, 'utf8'));
}

/** Deep copy with every '#/components/schemas/X' pointing into the standalone defs schema. */
function rewriteRefs(node) {
  if (Array.isArray(node)) return node.map(rewriteRefs);
  if (node && typeof node === 'object') {
    const out = {};
    for (const [k, v] of Object.entries(node)) {
      out[k] = k === '$ref' && typeof v === 'string' && v.startsWith('#/components/schemas/')
        ? `${DEFS_ID}#/$defs/${v.slice('#/components/schemas/'.length)}`
        : rewriteRefs(v);
    }
    return out;
  }
  return node;
}

export function createChecker(spec = loadSpec()) {
  // Strict mode: an unknown keyword or a meaningless combination in the spec
  // is an error, not silently ignored.
  const ajv = new Ajv2020({ strict: true, strictRequired: false, allowUnionTypes: true, allErrors: true });
  addFormats(ajv);
  ajv.addSchema({ $id: DEFS_ID, $defs: rewriteRefs(spec.components.schemas) });
  const cache = new Map();
  const compile = (key, schema) => {
    if (!cache.has(key)) cache.set(key, ajv.compile(rewriteRefs(schema)));
    return cache.get(key);
  };
  const deref = (obj) => {
    let o = obj;
    while (o && o.$ref) {
      o = o.$ref.slice(2).split('/').reduce((n, p) => n[p.replace(/~1/g, '/').replace(/~0/g, '~')], spec);
    }
    return o;
  };

  const seen = new Set();    // "METHOD template status"
  const codes = new Set();   // error codes seen in answers

  const fail = (what, validate, value) => {
    const errors = ajv.errorsText(validate.errors, { separator: '\n  ' });
    throw new Error(`${what} does not match the spec:\n  ${errors}\nvalue: ${JSON.stringify(value).slice(0, 2000)}`);
  };

  /** Validates a response object (documented response `resp`, with a key for caching) against res. */
  function checkResponse(what, key, resp, res) {
    resp = deref(resp);
    for (const [name, h0] of Object.entries(resp.headers ?? {})) {
      const h = deref(h0);
      const value = res.headers.get(name);
      if (value === null) {
        if (h.required) throw new Error(`${what}: header ${name} is required by the spec but missing`);
        continue;
      }
      const v = compile(`${key} header ${name}`, h.schema);
      if (!v(value)) fail(`${what}: header ${name}`, v, value);
    }
    const types = Object.keys(resp.content ?? {});
    const ct = res.headers.get('content-type') ?? '';
    if (types.length === 0) {
      if (res.body !== null && res.body !== '') throw new Error(`${what}: the spec documents no body, got ${JSON.stringify(res.body)}`);
      return;
    }
    if (!types.includes('application/json')) {
      // A text body (metrics, events, the dashboard): the type must be one
      // the spec lists; the text itself is checked by the test that asked.
      if (!types.some((t) => ct.toLowerCase().startsWith(t))) {
        throw new Error(`${what}: content-type is '${ct}', not one of ${types.join(', ')}`);
      }
      return;
    }
    const media = resp.content['application/json'];
    if (!/^application\/json\b/.test(ct)) throw new Error(`${what}: content-type is '${ct}', not application/json`);
    const v = compile(`${key} body`, media.schema);
    if (!v(res.body)) fail(`${what}: body`, v, res.body);
    if (res.status >= 400 && res.body?.error?.code) codes.add(res.body.error.code);
  }

  return {
    spec,
    seen,
    codes,
    /**
     * Checks an answer of `METHOD template` (e.g. 'GET', '/v1/tasks/{id}'),
     * res as harness api() returns it. Throws with the schema errors.
     */
    check(method, template, res) {
      const m = method.toLowerCase();
      const op = spec.paths[template]?.[m];
      if (!op) throw new Error(`${method} ${template} is not in the spec`);
      const resp = op.responses[String(res.status)];
      if (!resp) {
        throw new Error(`${method} ${template} answered ${res.status} (${JSON.stringify(res.body)}), ` +
          `which the spec does not list for it`);
      }
      checkResponse(`${method} ${template} ${res.status}`, `${m} ${template} ${res.status}`, resp, res);
      seen.add(`${method.toUpperCase()} ${template} ${res.status}`);
      return res;
    },
    /** Checks an answer against a response of components.responses (e.g. 'MethodNotAllowed'). */
    checkComponentResponse(name, res) {
      const resp = spec.components.responses[name];
      if (!resp) throw new Error(`components.responses.${name} is not in the spec`);
      checkResponse(`${name} (${res.status})`, `component ${name}`, resp, res);
      seen.add(`component ${name}`);
      return res;
    },
    /** Compiles components.schemas[name]; throws when it is not a valid strict schema. */
    compileSchema(name) {
      if (!spec.components.schemas[name]) throw new Error(`components.schemas.${name} is not in the spec`);
      return compile(`schema ${name}`, { $ref: `#/components/schemas/${name}` });
    },
    /** Validates a value against components.schemas[name]. */
    checkSchema(name, value) {
      const v = this.compileSchema(name);
      if (!v(value)) fail(`schema ${name}`, v, value);
      return value;
    },
    /** Validates a value against a schema object found in the spec. */
    checkValue(what, schema, value) {
      const v = compile(`value ${what}`, schema);
      if (!v(value)) fail(what, v, value);
      return value;
    },
    /** Every "METHOD template status" the spec documents. */
    documented() {
      const all = [];
      for (const [template, item] of Object.entries(spec.paths)) {
        for (const m of METHODS) {
          if (!item[m]) continue;
          for (const status of Object.keys(item[m].responses)) all.push(`${m.toUpperCase()} ${template} ${status}`);
        }
      }
      return all;
    },
    operations() {
      const all = [];
      for (const [template, item] of Object.entries(spec.paths)) {
        for (const m of METHODS) if (item[m]) all.push({ method: m.toUpperCase(), template, op: item[m] });
      }
      return all;
    },
  };
}
