#!/usr/bin/env bash
# The project's test command (README, .ci/run): finds JDK 25 and runs every module's tests with Maven.
set -euo pipefail
root=$(cd "$(dirname "$(readlink -f "$0")")/.." && pwd)
. "$root/scripts/find-jdk25.sh"
cd "$root"
exec mvn -B verify "$@"
