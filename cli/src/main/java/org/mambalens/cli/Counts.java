package org.mambalens.cli;

import picocli.CommandLine.ITypeConverter;
import picocli.CommandLine.TypeConversionException;

/**
 * Converters for options that take a count or an index: a value out of range is a malformed command line
 * (exit 2), said in one line, never replaced by a default or clamped.
 */
final class Counts {
    private Counts() {
    }

    /** 1 or more: --limit, --top, --tokens. */
    static final class Positive implements ITypeConverter<Integer> {
        @Override
        public Integer convert(String value) {
            return atLeast(1, value);
        }
    }

    /** 0 or more: --max-new-tokens, --top-k, --start-layer, --layer. */
    static final class NonNegative implements ITypeConverter<Integer> {
        @Override
        public Integer convert(String value) {
            return atLeast(0, value);
        }
    }

    private static int atLeast(int min, String value) {
        int n;
        try {
            n = Integer.parseInt(value.strip());
        } catch (NumberFormatException e) {
            throw new TypeConversionException("\"" + value + "\" is not an integer from " + min + " to " + Integer.MAX_VALUE);
        }
        if (n < min) throw new TypeConversionException(n + " is less than " + min);
        return n;
    }
}
