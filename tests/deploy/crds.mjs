// Validates the prometheus-operator resources in a JSON array of Kubernetes
// documents (stdin) against the CRDs' openAPIV3Schema, as compiled by the npm
// package @kubernetes-models/prometheus-operator (./dev installs it into
// target/deploy-npm). Usage: node crds.mjs NODE_MODULES_DIR < docs.json
// Prints one line per validated document; exits 1 on the first invalid one.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const modules = process.argv[2];
const docs = JSON.parse(readFileSync(0, "utf8"));
let failed = false;
for (const doc of docs) {
  const [group, version] = doc.apiVersion.split("/");
  if (group !== "monitoring.coreos.com") continue;
  const file = join(modules, "@kubernetes-models/prometheus-operator", group, version, `${doc.kind}.js`);
  let model;
  try {
    model = (await import(pathToFileURL(file).href))[doc.kind];
  } catch (error) {
    console.error(`${doc.kind}/${doc.metadata?.name}: no schema for ${doc.apiVersion} ${doc.kind}: ${error.message}`);
    failed = true;
    continue;
  }
  try {
    new model(doc).validate();
    console.log(`valid ${doc.apiVersion} ${doc.kind}/${doc.metadata.name}`);
  } catch (error) {
    console.error(`${doc.kind}/${doc.metadata?.name}: ${error.message}`);
    failed = true;
  }
}
process.exit(failed ? 1 : 0);
