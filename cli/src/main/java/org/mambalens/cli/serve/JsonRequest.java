package org.mambalens.cli.serve;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Set;

/**
 * A POST body of the API: one JSON object whose fields are read by name, each with its type checked; a field the
 * endpoint does not know is refused, so that a misspelt option is not silently ignored.
 */
final class JsonRequest {
    private static final ObjectMapper JSON = new ObjectMapper();

    private final ObjectNode body;

    private JsonRequest(ObjectNode body) {
        this.body = body;
    }

    /** Parses {@code bytes}, refusing anything but an object with only the {@code known} fields. */
    static JsonRequest parse(byte[] bytes, Set<String> known) {
        JsonNode node;
        try {
            node = JSON.readTree(new String(bytes, StandardCharsets.UTF_8));
        } catch (JsonProcessingException e) {
            throw new ApiException(ApiException.BAD_REQUEST, "malformed JSON: " + e.getOriginalMessage());
        }
        if (!(node instanceof ObjectNode object)) throw new ApiException(ApiException.BAD_REQUEST, "the request body must be a JSON object");
        for (Iterator<String> names = object.fieldNames(); names.hasNext(); ) {
            String name = names.next();
            if (!known.contains(name)) throw new ApiException(ApiException.BAD_REQUEST, "unknown field \"" + name + "\" (fields: " + String.join(", ", known.stream().sorted().toList()) + ")");
        }
        return new JsonRequest(object);
    }

    boolean has(String field) {
        JsonNode v = body.get(field);
        return v != null && !v.isNull();
    }

    /** A text field; {@code fallback} when absent. */
    String text(String field, String fallback) {
        if (!has(field)) return fallback;
        JsonNode v = body.get(field);
        if (!v.isTextual()) throw wrongType(field, "a string", v);
        return v.asText();
    }

    /** An integer field; {@code fallback} when absent. */
    Integer integer(String field, Integer fallback) {
        if (!has(field)) return fallback;
        JsonNode v = body.get(field);
        if (!v.isIntegralNumber() || !v.canConvertToInt()) throw wrongType(field, "an integer", v);
        return v.asInt();
    }

    /** A field that is one string or a list of strings (a model, or models side by side). */
    List<String> texts(String field) {
        if (!has(field)) return List.of();
        JsonNode v = body.get(field);
        if (v.isTextual()) return List.of(v.asText());
        List<String> out = new ArrayList<>();
        if (v.isArray()) for (JsonNode e : v) if (e.isTextual()) out.add(e.asText());
        if (!v.isArray() || out.size() != v.size() || out.isEmpty()) throw wrongType(field, "a string or a non-empty list of strings", v);
        return out;
    }

    private static ApiException wrongType(String field, String expected, JsonNode value) {
        String shown = value.toString();
        if (shown.length() > 40) shown = shown.substring(0, 40) + "…";
        return new ApiException(ApiException.BAD_REQUEST, "\"" + field + "\" must be " + expected + ", not " + shown);
    }
}
