package org.mambalens.weights;

import java.math.BigInteger;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * A pickle reader (protocols 2–5) that builds plain Java values and never runs anything it reads.
 *
 * <p>Data opcodes build {@code String}, {@code Long}/{@code BigInteger}, {@code Double}, {@code Boolean},
 * {@code null}, {@code byte[]}, {@code List} (lists and tuples) and {@code Map} (dicts). A GLOBAL is
 * only a name: it becomes a {@link Global} marker if the caller's allow-list holds it, and an error
 * otherwise; REDUCE and BUILD on a marker are handed to the caller's {@link Reducer}, which decides
 * what (if anything) the call means. Persistent ids go to the caller's resolver. Every allocation is
 * bounded, so a crafted file can exhaust neither memory nor the stack.
 */
final class Unpickler {
    /** A module-qualified name the stream referred to and the allow-list accepted. */
    record Global(String module, String name) {
        @Override
        public String toString() {
            return module + "." + name;
        }
    }

    /** Interprets a call {@code callable(*args)} of an allowed global. */
    interface Reducer {
        Object reduce(Global callable, List<Object> args);

        /** BUILD: sets state on an object the reducer made earlier. */
        default Object build(Object target, Object state) {
            throw new PickleException("BUILD on " + describe(target) + " is not supported");
        }
    }

    /** Resolves a persistent id (BINPERSID), e.g. a storage reference. */
    interface PersistentLoader {
        Object load(Object pid);
    }

    static final class PickleException extends RuntimeException {
        PickleException(String message) {
            super(message);
        }
    }

    private static final Object MARK = new Object() {
        @Override
        public String toString() {
            return "MARK";
        }
    };
    private static final int MAX_STACK = 1_000_000;
    private static final int MAX_MEMO = 10_000_000;
    private static final long MAX_STRING = 256L << 20;

    private final ByteBuffer in;
    private final Set<String> allowed;
    private final Reducer reducer;
    private final PersistentLoader persistent;
    private final List<Object> stack = new ArrayList<>();
    private final Map<Long, Object> memo = new HashMap<>();

    Unpickler(byte[] data, Set<String> allowedGlobals, Reducer reducer, PersistentLoader persistent) {
        this.in = ByteBuffer.wrap(data).order(ByteOrder.LITTLE_ENDIAN);
        this.allowed = allowedGlobals;
        this.reducer = reducer;
        this.persistent = persistent;
    }

    Object load() {
        while (true) {
            if (!in.hasRemaining()) throw new PickleException("truncated pickle: no STOP opcode");
            int op = in.get() & 0xFF;
            switch (op) {
                case 0x80 -> { // PROTO
                    int proto = need(1).get() & 0xFF;
                    if (proto > 5) throw new PickleException("pickle protocol " + proto + " is not supported (2–5)");
                }
                case 0x95 -> need(8).getLong(); // FRAME: a length hint only
                case '.' -> { // STOP
                    if (stack.size() != 1) throw new PickleException("malformed pickle: " + stack.size() + " values left at STOP");
                    return stack.get(0);
                }
                case '(' -> push(MARK);
                case ')' -> push(List.of());
                case ']' -> push(new ArrayList<>());
                case '}' -> push(new LinkedHashMap<>());
                case 0x8f -> push(new ArrayList<>()); // EMPTY_SET, kept as a list
                case 'N' -> push(null);
                case 0x88 -> push(Boolean.TRUE);
                case 0x89 -> push(Boolean.FALSE);
                case 'J' -> push((long) need(4).getInt());
                case 'K' -> push((long) (need(1).get() & 0xFF));
                case 'M' -> push((long) (need(2).getShort() & 0xFFFF));
                case 0x8a -> push(longOf(bytes(need(1).get() & 0xFF))); // LONG1
                case 0x8b -> push(longOf(bytes(length(need(4).getInt() & 0xFFFFFFFFL)))); // LONG4
                case 'G' -> push(ByteBuffer.wrap(bytes(8)).getDouble()); // BINFLOAT, big-endian
                case 'X' -> push(utf8(length(need(4).getInt() & 0xFFFFFFFFL)));
                case 0x8c -> push(utf8(need(1).get() & 0xFF)); // SHORT_BINUNICODE
                case 0x8d -> push(utf8(length(need(8).getLong()))); // BINUNICODE8
                case 'T' -> push(new String(bytes(length(need(4).getInt() & 0xFFFFFFFFL)), StandardCharsets.ISO_8859_1)); // BINSTRING
                case 'U' -> push(new String(bytes(need(1).get() & 0xFF), StandardCharsets.ISO_8859_1)); // SHORT_BINSTRING
                case 'B' -> push(bytes(length(need(4).getInt() & 0xFFFFFFFFL))); // BINBYTES
                case 'C' -> push(bytes(need(1).get() & 0xFF)); // SHORT_BINBYTES
                case 0x8e -> push(bytes(length(need(8).getLong()))); // BINBYTES8
                case 0x96 -> push(bytes(length(need(8).getLong()))); // BYTEARRAY8
                case 't' -> push(java.util.Collections.unmodifiableList(popToMark()));
                case 0x85 -> push(tuple(1));
                case 0x86 -> push(tuple(2));
                case 0x87 -> push(tuple(3));
                case 'a' -> { Object v = pop(); appendable(peek()).add(v); }
                case 'e' -> { List<Object> items = popToMark(); appendable(peek()).addAll(items); }
                case 0x90 -> { List<Object> items = popToMark(); appendable(peek()).addAll(items); } // ADDITEMS
                case 'l' -> push(new ArrayList<>(popToMark()));
                case 's' -> { Object v = pop(), k = pop(); dict(peek()).put(k, v); }
                case 'u' -> {
                    List<Object> items = popToMark();
                    if (items.size() % 2 != 0) throw new PickleException("SETITEMS with an odd number of items");
                    Map<Object, Object> d = dict(peek());
                    for (int i = 0; i < items.size(); i += 2) d.put(items.get(i), items.get(i + 1));
                }
                case 'd' -> {
                    List<Object> items = popToMark();
                    if (items.size() % 2 != 0) throw new PickleException("DICT with an odd number of items");
                    Map<Object, Object> d = new LinkedHashMap<>();
                    for (int i = 0; i < items.size(); i += 2) d.put(items.get(i), items.get(i + 1));
                    push(d);
                }
                case 'q' -> memoize(need(1).get() & 0xFF);
                case 'r' -> memoize(need(4).getInt() & 0xFFFFFFFFL);
                case 0x94 -> memoize(memo.size()); // MEMOIZE
                case 'h' -> push(recall(need(1).get() & 0xFF));
                case 'j' -> push(recall(need(4).getInt() & 0xFFFFFFFFL));
                case 'c' -> push(global(line(), line())); // GLOBAL
                case 0x93 -> { Object name = pop(), module = pop(); push(global(text(module), text(name))); } // STACK_GLOBAL
                case 'R' -> { Object args = pop(), callable = pop(); push(reducer.reduce(global(callable), list(args))); }
                case 0x81 -> { Object args = pop(), cls = pop(); push(reducer.reduce(global(cls), list(args))); } // NEWOBJ
                case 'b' -> { Object state = pop(), target = pop(); push(reducer.build(target, state)); }
                case 'Q' -> push(persistent.load(pop())); // BINPERSID
                case '0' -> pop();
                case '2' -> push(peek()); // DUP
                default -> throw new PickleException(String.format("pickle opcode 0x%02x (%s) is not allowed", op,
                        op >= 0x20 && op < 0x7f ? "'" + (char) op + "'" : "binary"));
            }
        }
    }

    private Global global(String module, String name) {
        String full = module + "." + name;
        if (!allowed.contains(full)) throw new PickleException("refusing to load global " + full + " (only tensor-rebuilding globals are allowed; nothing was run)");
        return new Global(module, name);
    }

    private static Global global(Object o) {
        if (o instanceof Global g) return g;
        throw new PickleException("call of " + describe(o) + ", which is not an allowed global");
    }

    private ByteBuffer need(int n) {
        if (in.remaining() < n) throw new PickleException("truncated pickle");
        return in;
    }

    private int length(long n) {
        if (n < 0 || n > MAX_STRING || n > in.remaining()) throw new PickleException("pickle item of " + n + " bytes runs past the data");
        return (int) n;
    }

    private byte[] bytes(int n) {
        need(n);
        byte[] b = new byte[n];
        in.get(b);
        return b;
    }

    private String utf8(int n) {
        return new String(bytes(length(n)), StandardCharsets.UTF_8);
    }

    private String line() {
        StringBuilder sb = new StringBuilder();
        while (true) {
            byte b = need(1).get();
            if (b == '\n') return sb.toString();
            if (sb.length() > 4096) throw new PickleException("GLOBAL name too long");
            sb.append((char) (b & 0xFF));
        }
    }

    private static Object longOf(byte[] littleEndian) {
        if (littleEndian.length == 0) return 0L;
        byte[] be = new byte[littleEndian.length];
        for (int i = 0; i < be.length; i++) be[i] = littleEndian[be.length - 1 - i];
        BigInteger v = new BigInteger(be);
        return v.bitLength() < 64 ? (Object) v.longValue() : v;
    }

    private void push(Object o) {
        if (stack.size() >= MAX_STACK) throw new PickleException("pickle stack deeper than " + MAX_STACK);
        stack.add(o);
    }

    private Object pop() {
        if (stack.isEmpty() || stack.get(stack.size() - 1) == MARK) throw new PickleException("malformed pickle: pop from an empty stack");
        return stack.remove(stack.size() - 1);
    }

    private Object peek() {
        if (stack.isEmpty()) throw new PickleException("malformed pickle: empty stack");
        return stack.get(stack.size() - 1);
    }

    private List<Object> popToMark() {
        int m = stack.lastIndexOf(MARK);
        if (m < 0) throw new PickleException("malformed pickle: no MARK");
        List<Object> items = new ArrayList<>(stack.subList(m + 1, stack.size()));
        stack.subList(m, stack.size()).clear();
        return items;
    }

    private List<Object> tuple(int n) {
        List<Object> items = new ArrayList<>(n);
        for (int i = 0; i < n; i++) items.add(0, pop());
        return java.util.Collections.unmodifiableList(items);
    }

    private void memoize(long key) {
        if (memo.size() >= MAX_MEMO) throw new PickleException("pickle memo larger than " + MAX_MEMO);
        memo.put(key, peek());
    }

    private Object recall(long key) {
        if (!memo.containsKey(key)) throw new PickleException("malformed pickle: memo " + key + " was never stored");
        return memo.get(key);
    }

    @SuppressWarnings("unchecked")
    private static List<Object> list(Object o) {
        if (o instanceof List<?> l) return (List<Object>) l;
        throw new PickleException("expected a list or tuple, found " + describe(o));
    }

    /** A list that APPEND may grow: tuples are immutable in Python too, so appending to one is a malformed pickle. */
    @SuppressWarnings("unchecked")
    private static List<Object> appendable(Object o) {
        if (o instanceof ArrayList<?> l) return (List<Object>) l;
        throw new PickleException("malformed pickle: APPEND to " + describe(o) + ", not a list");
    }

    @SuppressWarnings("unchecked")
    private static Map<Object, Object> dict(Object o) {
        if (o instanceof Map<?, ?> m) return (Map<Object, Object>) m;
        throw new PickleException("expected a dict, found " + describe(o));
    }

    private static String text(Object o) {
        if (o instanceof String s) return s;
        throw new PickleException("expected a string, found " + describe(o));
    }

    static String describe(Object o) {
        if (o == null) return "None";
        if (o instanceof byte[] b) return "bytes[" + b.length + "]";
        if (o instanceof List<?> l) return "a sequence of " + l.size();
        if (o instanceof Map<?, ?> m) return "a dict of " + m.size();
        return o.getClass().getSimpleName() + " " + Arrays.asList(o);
    }
}
