package org.mambalens.engine.text;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.mambalens.engine.io.CheckpointException;
import org.mambalens.engine.io.InputFile;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.text.Normalizer;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Byte-level BPE as Hugging Face {@code tokenizers} runs it for GPT-NeoX-style {@code tokenizer.json}
 * files (the state-spaces/mamba-*-hf tokenizers): added tokens split out first, an optional NFC/NFKC
 * normaliser, the GPT-2 pre-tokenisation regex, bytes mapped to printable characters, then merges by
 * rank. Other normalisers, pre-tokenisers or models are refused at load with a clear error.
 */
public final class BpeTokenizer {
    /** GPT-2's pre-tokenisation pattern; {@code \s} must be Unicode-aware as in the reference. */
    private static final Pattern GPT2_SPLIT = Pattern.compile(
            "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+",
            Pattern.UNICODE_CHARACTER_CLASS);
    private static final char[] BYTE_TO_CHAR = new char[256];
    private static final int[] CHAR_TO_BYTE = new int[512];

    static {
        java.util.Arrays.fill(CHAR_TO_BYTE, -1);
        int extra = 0;
        for (int b = 0; b < 256; b++) {
            boolean printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
            char c = (char) (printable ? b : 256 + extra++);
            BYTE_TO_CHAR[b] = c;
            CHAR_TO_BYTE[c] = b;
        }
    }

    private final Map<String, Integer> vocab;
    private final String[] tokens;                 // id → token string
    private final Map<String, Integer> mergeRank;  // "left right" → rank
    private final Map<String, Integer> added;      // added token content → id
    private final Set<Integer> special;            // ids of the added tokens marked "special" (end of text, padding)
    private final Pattern addedPattern;            // matches any added token, longest first; null if none
    private final Normalizer.Form normalizer;      // null when none
    private final boolean addPrefixSpace;
    private final boolean ignoreMerges;
    private final Map<String, int[]> cache = new ConcurrentHashMap<>();

    private BpeTokenizer(Map<String, Integer> vocab, String[] tokens, Map<String, Integer> mergeRank, Map<String, Integer> added, Set<Integer> special,
                         Normalizer.Form normalizer, boolean addPrefixSpace, boolean ignoreMerges) {
        this.vocab = vocab;
        this.tokens = tokens;
        this.mergeRank = mergeRank;
        this.added = added;
        this.special = special;
        this.normalizer = normalizer;
        this.addPrefixSpace = addPrefixSpace;
        this.ignoreMerges = ignoreMerges;
        if (added.isEmpty()) {
            addedPattern = null;
        } else {
            List<String> alternatives = new ArrayList<>(added.keySet());
            alternatives.sort(Comparator.comparingInt(String::length).reversed());
            addedPattern = Pattern.compile(String.join("|", alternatives.stream().map(Pattern::quote).toList()));
        }
    }

    public static BpeTokenizer load(Path file) {
        JsonNode root;
        try {
            root = new ObjectMapper().readTree(Files.readAllBytes(InputFile.wholeInMemory(file, InputFile.JSON_EXPANSION)));
        } catch (IOException e) {
            throw new CheckpointException(file, Files.exists(file) ? "not a valid tokenizer.json: " + e.getMessage().lines().findFirst().orElse("") : "no such file");
        }
        if (root == null || !root.isObject()) throw new CheckpointException(file, "not a JSON object");
        JsonNode model = root.path("model");
        if (!"BPE".equals(model.path("type").asText("BPE")) || !model.path("vocab").isObject()) {
            throw new CheckpointException(file, "only byte-level BPE models are supported (model.type " + model.path("type") + ")");
        }
        Map<String, Integer> vocab = new HashMap<>();
        int maxId = -1;
        for (var e : model.get("vocab").properties()) {
            if (!e.getValue().canConvertToInt() || e.getValue().asInt() < 0) throw new CheckpointException(file, "vocab entry " + e.getKey() + " has no valid id");
            vocab.put(e.getKey(), e.getValue().asInt());
            maxId = Math.max(maxId, e.getValue().asInt());
        }
        Map<String, Integer> added = new HashMap<>();
        Set<Integer> special = new HashSet<>();
        for (JsonNode t : root.path("added_tokens")) {
            if (!t.path("content").isTextual() || !t.path("id").canConvertToInt()) throw new CheckpointException(file, "malformed added_tokens entry " + t);
            added.put(t.get("content").asText(), t.get("id").asInt());
            if (t.path("special").asBoolean(false)) special.add(t.get("id").asInt());
            maxId = Math.max(maxId, t.get("id").asInt());
        }
        if (maxId > 10_000_000) throw new CheckpointException(file, "token id " + maxId + " is absurdly large");
        String[] tokens = new String[maxId + 1];
        vocab.forEach((k, v) -> tokens[v] = k);
        added.forEach((k, v) -> tokens[v] = k);
        Map<String, Integer> ranks = new HashMap<>();
        int rank = 0;
        for (JsonNode m : model.path("merges")) {
            String pair;
            if (m.isTextual()) pair = m.asText();
            else if (m.isArray() && m.size() == 2) pair = m.get(0).asText() + " " + m.get(1).asText();
            else throw new CheckpointException(file, "malformed merge " + m);
            ranks.putIfAbsent(pair, rank++);
        }
        return new BpeTokenizer(vocab, tokens, ranks, added, Set.copyOf(special), normalizer(file, root.path("normalizer")),
                byteLevel(file, root.path("pre_tokenizer")), model.path("ignore_merges").asBoolean(false));
    }

    private static Normalizer.Form normalizer(Path file, JsonNode n) {
        if (n.isMissingNode() || n.isNull()) return null;
        String type = n.path("type").asText();
        return switch (type) {
            case "NFC" -> Normalizer.Form.NFC;
            case "NFKC" -> Normalizer.Form.NFKC;
            case "NFD" -> Normalizer.Form.NFD;
            case "NFKD" -> Normalizer.Form.NFKD;
            default -> throw new CheckpointException(file, "unsupported normalizer " + type + " (NFC, NFKC, NFD, NFKD or none)");
        };
    }

    /** Returns add_prefix_space of the ByteLevel pre-tokeniser (alone or the only step of a Sequence). */
    private static boolean byteLevel(Path file, JsonNode p) {
        if (p.path("type").asText().equals("Sequence") && p.path("pretokenizers").size() == 1) p = p.path("pretokenizers").get(0);
        if (!p.path("type").asText().equals("ByteLevel")) throw new CheckpointException(file, "unsupported pre_tokenizer " + p.path("type") + " (ByteLevel expected)");
        if (!p.path("use_regex").asBoolean(true)) throw new CheckpointException(file, "ByteLevel with use_regex=false is not supported");
        return p.path("add_prefix_space").asBoolean(false);
    }

    public int vocabSize() {
        return tokens.length;
    }

    public int[] encode(String text) {
        List<Integer> ids = new ArrayList<>();
        int start = 0;
        if (addedPattern != null) {
            Matcher m = addedPattern.matcher(text);
            while (m.find()) {
                encodeOrdinary(text.substring(start, m.start()), ids);
                ids.add(added.get(m.group()));
                start = m.end();
            }
        }
        encodeOrdinary(text.substring(start), ids);
        return ids.stream().mapToInt(Integer::intValue).toArray();
    }

    private void encodeOrdinary(String text, List<Integer> out) {
        if (text.isEmpty()) return;
        if (normalizer != null) text = Normalizer.normalize(text, normalizer);
        if (addPrefixSpace && !text.startsWith(" ")) text = " " + text;
        Matcher m = GPT2_SPLIT.matcher(text);
        while (m.find()) {
            for (int id : cache.computeIfAbsent(m.group(), this::bpe)) out.add(id);
        }
    }

    /** Byte-level symbols of one pre-token, merged pairwise by lowest rank until no merge applies. */
    private int[] bpe(String piece) {
        byte[] utf8 = piece.getBytes(StandardCharsets.UTF_8);
        StringBuilder mapped = new StringBuilder(utf8.length);
        for (byte b : utf8) mapped.append(BYTE_TO_CHAR[b & 0xFF]);
        String word = mapped.toString();
        if (ignoreMerges && vocab.containsKey(word)) return new int[]{vocab.get(word)};
        List<String> symbols = new ArrayList<>(word.length());
        for (int i = 0; i < word.length(); i++) symbols.add(String.valueOf(word.charAt(i)));
        while (symbols.size() > 1) {
            int best = -1, bestRank = Integer.MAX_VALUE;
            for (int i = 0; i + 1 < symbols.size(); i++) {
                Integer r = mergeRank.get(symbols.get(i) + " " + symbols.get(i + 1));
                if (r != null && r < bestRank) {
                    bestRank = r;
                    best = i;
                }
            }
            if (best < 0) break;
            symbols.set(best, symbols.get(best) + symbols.remove(best + 1));
        }
        int[] ids = new int[symbols.size()];
        for (int i = 0; i < ids.length; i++) {
            Integer id = vocab.get(symbols.get(i));
            if (id == null) throw new IllegalStateException("tokenizer has no id for symbol " + symbols.get(i));
            ids[i] = id;
        }
        return ids;
    }

    /** Whether this id is a special added token (end of text, padding): a control mark, not text. */
    public boolean isSpecial(int id) {
        return special.contains(id);
    }

    /** The UTF-8 bytes a token stands for (added tokens: their text). */
    public byte[] tokenBytes(int id) {
        if (id < 0 || id >= tokens.length || tokens[id] == null) throw new IllegalArgumentException("token id " + id + " is not in the vocabulary");
        String t = tokens[id];
        if (added.containsKey(t)) return t.getBytes(StandardCharsets.UTF_8);
        ByteArrayOutputStream out = new ByteArrayOutputStream(t.length());
        for (int i = 0; i < t.length(); i++) {
            char c = t.charAt(i);
            int b = c < CHAR_TO_BYTE.length ? CHAR_TO_BYTE[c] : -1;
            if (b < 0) out.writeBytes(String.valueOf(c).getBytes(StandardCharsets.UTF_8));
            else out.write(b);
        }
        return out.toByteArray();
    }

    public String decode(int[] ids) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        for (int id : ids) out.writeBytes(tokenBytes(id));
        return out.toString(StandardCharsets.UTF_8);
    }
}
