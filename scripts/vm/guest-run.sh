#!/bin/bash
# Runs inside the podrun test guest as root (started by /sbin/podrun-vm-init from the job tar).
# /work holds the checkout; /work/.vm-job/files lists the test files. Ends with one line
#   PODRUN-VM-STATUS: rc=<vitest exit> passed=N failed=M skipped=K seconds=S
# which scripts/vm-test parses. Guest facts come first so a failing run is easy to read.
set -u
cd /work
# PODRUN_VM=1 and PODRUN_TEST_TIME_SCALE tell tests that wait on wall-clock time that this is a
# TCG guest, 7-16x slower than the host (KVM: 1).
export PODRUN_EXPECT_CGROUP=2 PODRUN_VM=1 CI=true FORCE_COLOR=0 NO_COLOR=1
export PODRUN_TEST_TIME_SCALE=${PODRUN_TEST_TIME_SCALE:-10}
[ -f .vm-job/env ] && . .vm-job/env

echo "guest: up $(cut -d" " -f1 /proc/uptime) s, kernel $(uname -r), $(nproc) cpus, $(awk '/MemTotal/ {print int($2/1024)}' /proc/meminfo) MiB"
echo "guest: /sys/fs/cgroup is $(stat -f -c %T /sys/fs/cgroup), controllers: $(cat /sys/fs/cgroup/cgroup.controllers)"
echo "guest: node $(node --version), checkout $(cat .vm-job/revision 2>/dev/null)"

if [ -f .vm-job/shell ]; then
  # PODRUN_VM_SHELL=1: an interactive root shell on the serial console instead of the suite.
  echo "guest: shell in /work (PODRUN_EXPECT_CGROUP=2); run e.g."
  echo "  node node_modules/vitest/vitest.mjs run --no-isolate --no-file-parallelism $(tr '\n' ' ' < .vm-job/files)"
  echo "guest: 'exit' powers the guest off"
  setsid -c bash -i <>/dev/ttyS0 >&0 2>&1
  exit 0
fi

mapfile -t files < .vm-job/files
echo "guest: ${#files[@]} test files: ${files[*]}"
report=/tmp/podrun-vm-vitest.json
start=$(date +%s.%N)
# vitest's per-test limit: the host's 60 s, scaled, at most 5 min so a hung test cannot eat the run.
timeout_ms=$(( 60000 * PODRUN_TEST_TIME_SCALE ))
[ "$timeout_ms" -gt 300000 ] && timeout_ms=300000
node node_modules/vitest/vitest.mjs run --no-isolate --no-file-parallelism \
  --testTimeout="$timeout_ms" --hookTimeout="$(( 2 * timeout_ms ))" \
  --reporter=verbose --reporter=json --outputFile.json="$report" "${files[@]}"
rc=$?
seconds=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
counts=$(node -e '
  const fs = require("node:fs");
  try {
    const r = JSON.parse(fs.readFileSync(process.argv[1], "utf8"));
    // A file that fails to load, or whose beforeAll/afterAll fails, has no failed test but is a
    // failure: count it.
    const broken = r.testResults.filter((f) => f.status === "failed" && !f.assertionResults.some((a) => a.status === "failed")).length;
    const skipped = r.numPendingTests + r.numTodoTests;
    console.log(`passed=${r.numPassedTests} failed=${r.numFailedTests + broken} skipped=${skipped}`);
  } catch (e) {
    console.log("passed=0 failed=0 skipped=0 error=no-report");
  }' "$report")
printf "\nPODRUN-VM-STATUS: rc=%s %s seconds=%s\n" "$rc" "$counts" "$seconds"
