#!/usr/bin/env bash
# A standalone Spark cluster on this machine, on the loopback address only: one master and two workers (one core each) started
# from the Spark jars that Maven put on the spark module's class path (no Spark tarball: they come from Maven Central, laid out
# as a Spark home of symbolic links), the job submitted through spark-submit's main class with mambalens-spark.jar, its
# results.json compared with the same command's on this machine without Spark, then the cluster stopped.
#
#   scripts/spark-standalone.sh [COMMAND ARGS...]     default: evaluate --models vim --methods raw --limit 6
#     (a command whose output is --out DIR: evaluate, evaluate-text, explain --inputs LIST; the script adds --out and --spark)
#   TOLERANCE=1e-6 scripts/spark-standalone.sh ...     (default 1e-9; the comparison prints the largest difference either way)
# Prints the spark-submit command it runs; leaves its logs and both outputs in the directory it names.
set -euo pipefail
root=$(cd "$(dirname "$(readlink -f "$0")")/.." && pwd)
. "$root/scripts/find-jdk25.sh"
cd "$root"
args=("$@")
[ ${#args[@]} -gt 0 ] || args=(evaluate --models vim --methods raw --limit 6)

mvn -q -B -Dstyle.color=never -DskipTests -pl spark -am package >&2
work=$(mktemp -d /tmp/mambalens-spark.XXXXXX)
echo "spark-standalone: logs and outputs in $work" >&2

# A Spark home: jars/ holds Spark and its dependencies (a worker builds its executors' class path from it); MambaLens reaches
# the executors as the application jar, as on a real cluster.
home="$work/spark-home"
mkdir -p "$home/jars"
for jar in $(tr ':' ' ' < spark/target/classpath.txt); do
  case "$jar" in "$root"/*) ;; *) ln -s "$jar" "$home/jars/" ;; esac
done
export SPARK_HOME="$home" SPARK_SCALA_VERSION=2.13 SPARK_LOCAL_IP=127.0.0.1 SPARK_LOG_DIR="$work"
port=$((17000 + RANDOM % 2000))
master="spark://127.0.0.1:$port"

pids=()
stop() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  echo "spark-standalone: cluster stopped" >&2
}
trap stop EXIT

# wait_for FILE TEXT: until the log says TEXT (60 s at most).
wait_for() {
  for _ in $(seq 120); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.5; done
  echo "spark-standalone: no '$2' in $1 after 60 s:" >&2; tail -20 "$1" >&2; exit 1
}

java -cp "$home/jars/*" org.apache.spark.deploy.master.Master --host 127.0.0.1 --port "$port" --webui-port 0 > "$work/master.log" 2>&1 &
pids+=($!)
wait_for "$work/master.log" "I have been elected leader"
for w in 1 2; do
  java -cp "$home/jars/*" org.apache.spark.deploy.worker.Worker --host 127.0.0.1 --cores 1 --memory 2g --webui-port 0 \
    --work-dir "$work/worker$w" "$master" > "$work/worker$w.log" 2>&1 &
  pids+=($!)
done
wait_for "$work/worker1.log" "Successfully registered with master"
wait_for "$work/worker2.log" "Successfully registered with master"
echo "spark-standalone: master $master and two workers up" >&2

# spark-submit, as its launcher script would run it (the driver in this JVM: client mode).
submit=(java --add-modules jdk.incubator.vector --enable-native-access=ALL-UNNAMED -Dmambalens.home="$root" -cp "$home/jars/*"
  org.apache.spark.deploy.SparkSubmit --master "$master" --conf spark.ui.enabled=false --conf spark.driver.host=127.0.0.1
  --conf spark.driver.bindAddress=127.0.0.1 --conf spark.log.level=WARN --class org.mambalens.cli.Main spark/target/mambalens-spark.jar
  "${args[@]}" --spark "$master" --out "$work/spark")
echo "spark-standalone: ${submit[*]}" >&2
start=$(date +%s.%N)
"${submit[@]}"
spark_seconds=$(echo "$(date +%s.%N) - $start" | bc)

start=$(date +%s.%N)
./mambalens "${args[@]}" --out "$work/single" >&2
single_seconds=$(echo "$(date +%s.%N) - $start" | bc)

printf 'spark-standalone: standalone cluster %.1f s (driver start, cluster, items), single machine %.1f s (a thread per core)\n' "$spark_seconds" "$single_seconds"
compare() {
  java -cp "spark/target/mambalens-spark-classes.jar:$(cat spark/target/classpath.txt)" org.mambalens.spark.ResultsComparison "$1" "$2" "${TOLERANCE:-1e-9}"
}
# The control: the single-machine command run again, as different from the first as a run on the cluster may be.
./mambalens "${args[@]}" --out "$work/single-again" > /dev/null 2>&1
echo "spark-standalone: control, the single-machine command against itself:"
compare "$work/single-again/results.json" "$work/single/results.json" || true
echo "spark-standalone: the standalone cluster against the single-machine command:"
compare "$work/spark/results.json" "$work/single/results.json"
