/**
 * The project's folder (where package.json, src/ and samples/ are), for the few files docbatch
 * reads or runs by path: the renderer child's entry, package.json, the demo's samples.
 *
 * Found from this module's own URL, one folder down: src/root.ts when Node runs the sources,
 * and dist/<chunk>.js when it runs the bundle (scripts/bundle.ts puts every chunk directly in
 * one folder under the project, and this module's code is inside one of them). A path written
 * relative to any other module would be wrong in the bundle, where that module has no file.
 */
export const ROOT_URL = new URL('../', import.meta.url);
