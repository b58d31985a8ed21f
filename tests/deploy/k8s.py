"""YAML and Kubernetes-schema helpers of tests/tests/deploy_*.rs, run with
target/deploy-venv/bin/python (./dev installs kubernetes-validate there).

  k8s.py to-json               multi-document YAML on stdin -> JSON array on stdout
  k8s.py to-yaml               JSON on stdin -> YAML on stdout
  k8s.py validate VERSION      multi-document YAML on stdin: every document not of
                               monitoring.coreos.com validated strictly (unknown fields
                               are errors) against Kubernetes VERSION; the documents
                               as a JSON array on stdout
"""
import json
import sys

import yaml


def main() -> int:
    command = sys.argv[1]
    if command == "to-json":
        json.dump([d for d in yaml.safe_load_all(sys.stdin) if d is not None], sys.stdout)
    elif command == "to-yaml":
        yaml.safe_dump(json.load(sys.stdin), sys.stdout, sort_keys=False, width=120)
    elif command == "validate":
        import kubernetes_validate

        version = sys.argv[2]
        docs = [d for d in yaml.safe_load_all(sys.stdin) if d is not None]
        failed = False
        for doc in docs:
            if doc.get("apiVersion", "").startswith("monitoring.coreos.com/"):
                continue  # CRD kinds: tests/deploy/crds.mjs
            name = f"{doc.get('kind')}/{doc.get('metadata', {}).get('name')}"
            try:
                kubernetes_validate.validate(doc, version, strict=True)
            except kubernetes_validate.ValidationError as error:
                print(f"{name}: {error.message} at {'.'.join(map(str, error.path))}", file=sys.stderr)
                failed = True
            except kubernetes_validate.SchemaNotFoundError as error:
                print(f"{name}: no schema: {error}", file=sys.stderr)
                failed = True
        if failed:
            return 1
        json.dump(docs, sys.stdout)
    else:
        print(f"unknown command {command}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
