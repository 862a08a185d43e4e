package org.mambalens.weights;

import org.mambalens.engine.io.CheckpointException;
import org.mambalens.engine.io.DType;
import org.mambalens.engine.io.InputFile;
import org.mambalens.engine.io.MemoryBudget;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.zip.ZipEntry;
import java.util.zip.ZipException;
import java.util.zip.ZipFile;

/**
 * Reads the tensors of a PyTorch {@code .pth}/{@code .pt} checkpoint (the zip format of
 * {@code torch.save}: {@code <name>/data.pkl} plus one {@code <name>/data/<key>} entry per storage)
 * without Python and without running any of its pickle: only the globals that rebuild tensors and
 * ordered dicts are understood, and a few plain-data classes training scripts save beside the weights
 * (argparse's Namespace) are kept as inert maps. Any other global is refused with its name.
 */
public final class PthReader {
    /** One tensor, contiguous, little-endian, in its stored dtype. */
    public record TensorData(DType dtype, long[] shape, byte[] bytes) {
    }

    private static final Map<String, DType> STORAGES = Map.ofEntries(
            Map.entry("FloatStorage", DType.F32), Map.entry("HalfStorage", DType.F16), Map.entry("BFloat16Storage", DType.BF16),
            Map.entry("DoubleStorage", DType.F64), Map.entry("LongStorage", DType.I64), Map.entry("IntStorage", DType.I32),
            Map.entry("ShortStorage", DType.I16), Map.entry("CharStorage", DType.I8), Map.entry("ByteStorage", DType.U8),
            Map.entry("BoolStorage", DType.BOOL));
    private static final Set<String> ALLOWED;

    static {
        Set<String> names = new java.util.HashSet<>(Set.of(
                "collections.OrderedDict", "torch._utils._rebuild_tensor_v2", "torch._utils._rebuild_parameter",
                "torch._utils._rebuild_parameter_with_state", "argparse.Namespace", "_codecs.encode"));
        for (String s : STORAGES.keySet()) names.add("torch." + s);
        ALLOWED = Set.copyOf(names);
    }

    /** A storage reference from a persistent id: dtype, zip entry key, element count. */
    private record Storage(DType dtype, String key, long elements) {
    }

    /** A tensor as the pickle describes it, before its bytes are read. */
    private record TensorRef(Storage storage, long offset, long[] shape, long[] stride) {
    }

    private PthReader() {
    }

    /**
     * The checkpoint's tensors by name, flattened from nested dicts with dots ("model.head.weight");
     * when the top level holds a dict under "model" or "state_dict", that dict alone is returned.
     */
    public static Map<String, TensorData> read(Path file) {
        try (ZipFile zip = new ZipFile(InputFile.regular(file).toFile())) {
            ZipEntry pkl = zip.stream().filter(e -> e.getName().endsWith("data.pkl") && e.getName().chars().filter(c -> c == '/').count() == 1)
                    .findFirst().orElseThrow(() -> new CheckpointException(file, "no <name>/data.pkl in this zip: not a torch.save checkpoint"));
            String prefix = pkl.getName().substring(0, pkl.getName().length() - "data.pkl".length());
            ZipEntry order = zip.getEntry(prefix + "byteorder");
            if (order != null && !new String(read(zip, order, 16, file)).strip().equals("little")) {
                throw new CheckpointException(file, "big-endian checkpoints are not supported");
            }
            Object root;
            try {
                root = new Unpickler(read(zip, pkl, 1L << 30, file), ALLOWED, new TorchReducer(), PthReader::storage).load();
            } catch (Unpickler.PickleException | ClassCastException | IndexOutOfBoundsException e) {
                throw new CheckpointException(file, e.getMessage() == null ? "malformed pickle" : e.getMessage());
            }
            Object weights = root;
            if (root instanceof Map<?, ?> top) {
                for (String key : new String[]{"model", "state_dict"}) {
                    if (top.get(key) instanceof Map<?, ?> inner) {
                        weights = inner;
                        break;
                    }
                }
            }
            Map<String, TensorRef> refs = new LinkedHashMap<>();
            flatten("", weights, refs);
            if (refs.isEmpty()) throw new CheckpointException(file, "no tensors found");
            Map<String, TensorData> out = new LinkedHashMap<>();
            Map<String, byte[]> storages = new java.util.HashMap<>();
            for (var e : refs.entrySet()) {
                TensorRef t = e.getValue();
                byte[] storage = storages.get(t.storage().key());
                long expected = MemoryBudget.product(t.storage().elements(), t.storage().dtype().bytes);
                if (storage == null) {
                    ZipEntry entry = zip.getEntry(prefix + "data/" + t.storage().key());
                    if (entry == null) throw new CheckpointException(file, "storage " + t.storage().key() + " of " + e.getKey() + " is missing");
                    storage = read(zip, entry, expected, file);
                    storages.put(t.storage().key(), storage);
                }
                // Checked on every use: two tensors may name one storage with different sizes.
                if (storage.length != expected) throw new CheckpointException(file, "storage " + t.storage().key() + " of " + e.getKey() + " holds " + storage.length + " bytes, " + expected + " expected");
                out.put(e.getKey(), materialize(file, e.getKey(), t, storage));
            }
            return out;
        } catch (ZipException e) {
            throw new CheckpointException(file, "not a torch.save zip checkpoint (" + e.getMessage() + "); legacy non-zip .pth files are not supported");
        } catch (IOException e) {
            throw new CheckpointException(file, "cannot read: " + e.getMessage());
        }
    }

    private static byte[] read(ZipFile zip, ZipEntry entry, long limit, Path file) throws IOException {
        if (limit > Integer.MAX_VALUE - 16) throw new CheckpointException(file, entry.getName() + " is larger than 2 GiB");
        try (InputStream in = zip.getInputStream(entry)) {
            byte[] b = in.readNBytes((int) limit + 1);        // never more than the header says the entry holds
            if (b.length > limit) throw new CheckpointException(file, entry.getName() + " is larger than its tensors need");
            return b;
        }
    }

    /** argparse.Namespace and the like: attributes only, never instantiated. */
    private static final class Attributes extends LinkedHashMap<Object, Object> {
    }

    /** What the allowed globals mean when the pickle calls them. */
    private static final class TorchReducer implements Unpickler.Reducer {
        @Override
        public Object reduce(Unpickler.Global g, List<Object> args) {
            return switch (g.toString()) {
                case "collections.OrderedDict" -> new LinkedHashMap<>();
                case "argparse.Namespace" -> new Attributes();
                case "torch._utils._rebuild_tensor_v2" -> {
                    if (args.size() < 4 || !(args.get(0) instanceof Storage s)) throw new Unpickler.PickleException("malformed _rebuild_tensor_v2 arguments");
                    yield new TensorRef(s, asLong(args.get(1)), longs(args.get(2)), longs(args.get(3)));
                }
                case "torch._utils._rebuild_parameter", "torch._utils._rebuild_parameter_with_state" -> args.get(0);
                case "_codecs.encode" -> {
                    if (args.isEmpty() || !(args.get(0) instanceof String text)) throw new Unpickler.PickleException("malformed _codecs.encode arguments");
                    yield text.getBytes(java.nio.charset.StandardCharsets.ISO_8859_1);
                }
                default -> throw new Unpickler.PickleException("refusing to call " + g + " (nothing was run)");
            };
        }

        /** A Namespace takes its attributes; an OrderedDict's attributes (torch's _metadata) are not items. */
        @Override
        public Object build(Object target, Object state) {
            if (target instanceof Attributes a && state instanceof Map<?, ?> m) a.putAll(m);
            else if (!(target instanceof Map<?, ?>)) throw new Unpickler.PickleException("BUILD on " + Unpickler.describe(target) + " is not supported");
            return target;
        }
    }

    /** BINPERSID: ('storage', torch.XxxStorage, key, location, numel). */
    private static Object storage(Object pid) {
        if (!(pid instanceof List<?> t) || t.size() < 5 || !"storage".equals(t.get(0)) || !(t.get(1) instanceof Unpickler.Global g)) {
            throw new Unpickler.PickleException("unsupported persistent id " + Unpickler.describe(pid));
        }
        DType dtype = STORAGES.get(g.name());
        if (dtype == null) throw new Unpickler.PickleException("unsupported storage type " + g);
        long n = asLong(t.get(4));
        if (n < 0 || n > (1L << 40)) throw new Unpickler.PickleException("storage of " + n + " elements");
        return new Storage(dtype, String.valueOf(t.get(2)), n);
    }

    private static void flatten(String prefix, Object value, Map<String, TensorRef> out) {
        if (value instanceof TensorRef t) {
            out.put(prefix, t);
        } else if (value instanceof Map<?, ?> m) {
            for (var e : m.entrySet()) flatten(prefix.isEmpty() ? String.valueOf(e.getKey()) : prefix + "." + e.getKey(), e.getValue(), out);
        }
    }

    /** The tensor's elements in row-major order (a strided view is copied element by element). */
    private static TensorData materialize(Path file, String name, TensorRef t, byte[] storage) {
        int size = t.storage().dtype().bytes;
        long count = MemoryBudget.product(t.shape());
        if (Arrays.stream(t.shape()).anyMatch(d -> d < 0)) throw new CheckpointException(file, name + ": negative dimension");
        if (t.stride().length != t.shape().length) throw new CheckpointException(file, name + ": stride and shape differ in rank");
        if (Arrays.stream(t.stride()).anyMatch(s -> s < 0)) throw new CheckpointException(file, name + ": negative stride");
        long last = t.offset();
        for (int i = 0; i < t.shape().length && last >= 0; i++) {
            long span = t.shape()[i] > 0 ? MemoryBudget.product(t.shape()[i] - 1, t.stride()[i]) : 0;
            last = span < 0 || last > Long.MAX_VALUE - span ? -1 : last + span;
        }
        if (count != 0 && (t.offset() < 0 || last < 0 || last >= t.storage().elements())) throw new CheckpointException(file, name + ": view runs past its storage");
        if (count < 0 || count * size > Integer.MAX_VALUE) throw new CheckpointException(file, name + " is larger than 2 GiB");
        byte[] out = new byte[(int) (count * size)];
        long[] index = new long[t.shape().length];
        for (long i = 0; i < count; i++) {
            long src = t.offset();
            for (int d = 0; d < index.length; d++) src += index[d] * t.stride()[d];
            System.arraycopy(storage, (int) (src * size), out, (int) (i * size), size);
            for (int d = index.length - 1; d >= 0 && ++index[d] == t.shape()[d]; d--) index[d] = 0;
        }
        return new TensorData(t.storage().dtype(), t.shape(), out);
    }

    private static long asLong(Object o) {
        if (o instanceof Long l) return l;
        throw new Unpickler.PickleException("expected an integer, found " + Unpickler.describe(o));
    }

    private static long[] longs(Object o) {
        if (!(o instanceof List<?> l)) throw new Unpickler.PickleException("expected a tuple of integers, found " + Unpickler.describe(o));
        long[] out = new long[l.size()];
        List<Object> items = new ArrayList<>(l);
        for (int i = 0; i < out.length; i++) out[i] = asLong(items.get(i));
        return out;
    }
}
