package org.mambalens.spark;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;

import static org.assertj.core.api.Assertions.assertThat;

class ResultsComparisonTest {
    private static JsonNode json(String text) throws Exception {
        return new ObjectMapper().readTree(text);
    }

    @Test
    void numbersWithinTheToleranceAndTimingsAreTheSame() throws Exception {
        var o = ResultsComparison.compare(json("{\"a\": 1.0000000000001, \"ms_per_image\": 3, \"b\": [\"x\"]}"),
                json("{\"a\": 1.0, \"ms_per_image\": 9, \"b\": [\"x\"]}"), 1e-9);
        assertThat(o.differences()).isEmpty();
        assertThat(o.largest()).isGreaterThan(0).isLessThan(1e-9);
    }

    @Test
    void aNumberTextOrFieldThatDiffersIsNamed() throws Exception {
        var o = ResultsComparison.compare(json("{\"m\": {\"auc\": 0.5001}, \"d\": \"p\", \"k\": [1, 2]}"),
                json("{\"m\": {\"auc\": 0.5}, \"d\": \"q\", \"k\": [1], \"extra\": 1}"), 1e-9);
        assertThat(o.differences()).hasSize(5).anyMatch(d -> d.startsWith("/m/auc")).anyMatch(d -> d.startsWith("/d"))
                .anyMatch(d -> d.startsWith("/k: 2 elements")).anyMatch(d -> d.startsWith("/extra: missing"));
    }
}
