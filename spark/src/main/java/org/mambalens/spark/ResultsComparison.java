package org.mambalens.spark;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Two results.json compared as the Spark and single-machine runs must agree: the same fields in the same order,
 * the same texts, numbers within a tolerance; the per-item timings are left out, as they differ between any two runs.
 * {@code java ... org.mambalens.spark.ResultsComparison GOT.json EXPECTED.json [TOLERANCE]} prints the differences
 * and the largest numeric one, and exits 1 when there is a difference.
 */
public final class ResultsComparison {
    /** Fields that are times, not results. */
    static final Set<String> TIMINGS = Set.of("ms_per_image");

    /** The outcome: where they differ, and the largest difference between two numbers (within the tolerance or not). */
    public record Outcome(List<String> differences, double largest) {
    }

    private ResultsComparison() {
    }

    public static Outcome compare(JsonNode got, JsonNode expected, double tolerance) {
        List<String> differences = new ArrayList<>();
        double[] largest = {0};
        compare(got, expected, tolerance, "", differences, largest);
        return new Outcome(differences, largest[0]);
    }

    private static void compare(JsonNode got, JsonNode expected, double tolerance, String path, List<String> differences, double[] largest) {
        if (got == null) {
            differences.add(path + ": missing");
        } else if (expected.isNumber() && got.isNumber()) {
            double d = Math.abs(got.asDouble() - expected.asDouble());
            largest[0] = Math.max(largest[0], d);
            if (!(d <= tolerance)) differences.add(path + ": " + got.asDouble() + " vs " + expected.asDouble());
        } else if (expected.isObject() && got.isObject()) {
            List<String> gotNames = new ArrayList<>(), expectedNames = new ArrayList<>();
            got.fieldNames().forEachRemaining(gotNames::add);
            expected.fieldNames().forEachRemaining(expectedNames::add);
            if (!gotNames.equals(expectedNames)) differences.add(path + ": fields " + gotNames + " vs " + expectedNames);
            for (Map.Entry<String, JsonNode> e : expected.properties()) {
                if (!TIMINGS.contains(e.getKey())) compare(got.get(e.getKey()), e.getValue(), tolerance, path + "/" + e.getKey(), differences, largest);
            }
        } else if (expected.isArray() && got.isArray()) {
            if (got.size() != expected.size()) differences.add(path + ": " + got.size() + " elements vs " + expected.size());
            for (int k = 0; k < Math.min(got.size(), expected.size()); k++) compare(got.get(k), expected.get(k), tolerance, path + "[" + k + "]", differences, largest);
        } else if (!got.equals(expected)) {
            differences.add(path + ": " + got + " vs " + expected);
        }
    }

    public static void main(String[] args) throws IOException {
        if (args.length < 2) {
            System.err.println("usage: ResultsComparison GOT.json EXPECTED.json [TOLERANCE (default 1e-9)]");
            System.exit(2);
        }
        ObjectMapper json = new ObjectMapper();
        double tolerance = args.length > 2 ? Double.parseDouble(args[2]) : 1e-9;
        Outcome o = compare(json.readTree(Path.of(args[0]).toFile()), json.readTree(Path.of(args[1]).toFile()), tolerance);
        o.differences().forEach(System.out::println);
        System.out.printf("%s: %d differences beyond %.0e; largest numeric difference %.3e%n", o.differences().isEmpty() ? "same" : "different",
                o.differences().size(), tolerance, o.largest());
        System.exit(o.differences().isEmpty() ? 0 : 1);
    }
}
