// Node module hooks that resolve bare specifiers the way a browser does with an import map, for test/vendor.test.js.
// The map (already resolved to absolute URLs) comes in MOVAN_IMPORT_MAP; a bare specifier it does not cover fails,
// as it would in a browser, so nothing can fall back to node_modules/.

/** @type {Record<string, string>} */
let imports = {};

export async function initialize(/** @type {{imports: Record<string, string>}} */ data) {
  imports = data.imports;
}

/**
 * @param {string} specifier
 * @param {any} context
 * @param {(s: string, c: any) => Promise<any>} next
 */
export async function resolve(specifier, context, next) {
  for (const [key, target] of Object.entries(imports)) {
    if (key.endsWith('/') ? specifier.startsWith(key) : specifier === key) {
      return { url: target + specifier.slice(key.length), shortCircuit: true };
    }
  }
  if (!/^(\.{0,2}\/|file:|node:|data:)/.test(specifier)) {
    throw new Error(`bare specifier ${specifier} is not in the import map`);
  }
  return next(specifier, context);
}
