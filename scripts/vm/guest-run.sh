#!/bin/bash
# Runs inside the podrun test guest as root (started by /sbin/podrun-vm-init from the job tar).
# /work holds the checkout; /work/.vm-job/files lists the test files. Ends with one line
#   PODRUN-VM-STATUS: rc=<vitest exit> passed=N failed=M skipped=K seconds=S
# which scripts/vm-test parses. Guest facts come first so a failing run is easy to read.
set -u
cd /work
export PODRUN_EXPECT_CGROUP=2 CI=true FORCE_COLOR=0 NO_COLOR=1
[ -f .vm-job/env ] && . .vm-job/env

echo "guest: up $(cut -d" " -f1 /proc/uptime) s, kernel $(uname -r), $(nproc) cpus, $(awk '/MemTotal/ {print int($2/1024)}' /proc/meminfo) MiB"
echo "guest: /sys/fs/cgroup is $(stat -f -c %T /sys/fs/cgroup), controllers: $(cat /sys/fs/cgroup/cgroup.controllers)"
echo "guest: node $(node --version), checkout $(cat .vm-job/revision 2>/dev/null)"

mapfile -t files < .vm-job/files
echo "guest: ${#files[@]} test files: ${files[*]}"
report=/tmp/podrun-vm-vitest.json
start=$(date +%s.%N)
node node_modules/vitest/vitest.mjs run --no-isolate --no-file-parallelism \
  --reporter=default --reporter=json --outputFile.json="$report" "${files[@]}"
rc=$?
seconds=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
counts=$(node -e '
  const fs = require("node:fs");
  try {
    const r = JSON.parse(fs.readFileSync(process.argv[1], "utf8"));
    // A file that fails to load has no failed test but is a failure: count it.
    const broken = r.testResults.filter((f) => f.status === "failed" && f.assertionResults.length === 0).length;
    const skipped = r.numPendingTests + r.numTodoTests;
    console.log(`passed=${r.numPassedTests} failed=${r.numFailedTests + broken} skipped=${skipped}`);
  } catch (e) {
    console.log("passed=0 failed=0 skipped=0 error=no-report");
  }' "$report")
printf "\nPODRUN-VM-STATUS: rc=%s %s seconds=%s\n" "$rc" "$counts" "$seconds"
