# Sourced by ./mambalens, scripts/test.sh and .ci/run: sets JAVA_HOME to a JDK 25 and puts it first on PATH.
# Looks at $JAVA_HOME, then /usr/lib/jvm/*, then the `java` on PATH (the machine's default java may be 17).
_is_jdk25() { [ -x "$1/bin/java" ] && [ -x "$1/bin/javac" ] && "$1/bin/java" -version 2>&1 | head -1 | grep -q 'version "25'; }
_found=""
for _j in ${JAVA_HOME:+"$JAVA_HOME"} /usr/lib/jvm/* /opt/java/* /opt/jdk*; do
  if _is_jdk25 "$_j"; then _found=$_j; break; fi
done
if [ -z "$_found" ] && command -v java >/dev/null 2>&1; then
  _j=$(dirname "$(dirname "$(readlink -f "$(command -v java)")")")
  _is_jdk25 "$_j" && _found=$_j
fi
if [ -z "$_found" ]; then
  echo "mambalens: no JDK 25 found (looked at \$JAVA_HOME and /usr/lib/jvm); install Temurin 25 or set JAVA_HOME" >&2
  return 1 2>/dev/null || exit 1
fi
export JAVA_HOME=$_found
export PATH="$JAVA_HOME/bin:$PATH"
# Maven's own libraries still call sun.misc.Unsafe; keep JDK 25 from warning about it on every build.
export MAVEN_OPTS="${MAVEN_OPTS:-} --sun-misc-unsafe-memory-access=allow"
unset _j _found
