package org.mambalens.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.mambalens.engine.io.CheckpointException;
import org.mambalens.engine.io.InputFile;
import org.mambalens.engine.model.BatchGeneration;
import org.mambalens.engine.model.LanguageModel;
import org.mambalens.engine.model.Models;
import org.mambalens.engine.text.BpeTokenizer;
import org.mambalens.engine.text.Sampler;
import org.mambalens.engine.text.StreamingDecoder;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.Callable;

@Command(name = "generate", mixinStandardHelpOptions = true,
        description = "Continue a prompt with a language model, streaming the text as it is generated.")
final class GenerateCommand implements Callable<Integer> {
    @Mixin
    DeviceOption device;

    @Mixin
    ModelOption model;

    static final class Input {
        @Option(names = "--prompt", paramLabel = "TEXT", description = "Prompt text, encoded with the model's tokenizer.json.")
        String prompt;

        @Option(names = "--token-ids", paramLabel = "IDS", description = "Prompt as comma-separated token ids.")
        String tokenIds;

        @Option(names = "--prompts", paramLabel = "FILE", description = "Several prompts, one a line (UTF-8), generated together, "
                + "each stopping on its own; prints one JSON object a line per prompt, in order (with --print-ids: its ids).")
        Path prompts;

        @Option(names = "--prompts-ids", paramLabel = "FILE", description = "Several prompts as lines of comma-separated token ids, "
                + "generated together as --prompts does.")
        Path promptsIds;
    }

    @ArgGroup(exclusive = true, multiplicity = "1")
    Input input;

    @Option(names = "--max-new-tokens", paramLabel = "N", defaultValue = "50", converter = Counts.NonNegative.class, description = "Tokens to generate (default ${DEFAULT-VALUE}).")
    int maxNewTokens;

    @Option(names = "--greedy", description = "Always take the most likely token (the default when no --temperature is given).")
    boolean greedy;

    @Option(names = "--temperature", paramLabel = "T", description = "Sample with this temperature (> 0).")
    Float temperature;

    @Option(names = "--top-k", paramLabel = "K", converter = Counts.NonNegative.class, description = "With --temperature: sample among the K most likely tokens; 0: all (default).")
    Integer topK;

    @Option(names = "--top-p", paramLabel = "P", description = "With --temperature: nucleus sampling, the smallest set of tokens of probability >= P (default 1.0).")
    Float topP;

    @Option(names = "--seed", paramLabel = "S", description = "With --temperature: random seed for sampling (default 0).")
    Long seed;

    @Option(names = "--print-ids", description = "Print the prompt and generated ids, comma-separated, on one line instead of the text.")
    boolean printIds;

    @Option(names = "--ignore-eos", description = "Keep generating after the end-of-sequence token.")
    boolean ignoreEos;

    @Option(names = "--batch-size", paramLabel = "N", defaultValue = "64", converter = Counts.Positive.class,
            description = "With --prompts: at most N prompts generated together at a time, which bounds the decoding states held (default ${DEFAULT-VALUE}).")
    int batchSize;

    @Option(names = "--min-new-tokens", paramLabel = "N", defaultValue = "0", converter = Counts.NonNegative.class,
            description = "Never pick the end-of-sequence token before N new tokens (transformers' min_new_tokens).")
    int minNewTokens;

    @Override
    public Integer call() {
        if (greedy && temperature != null) throw new IllegalArgumentException("--greedy and --temperature exclude each other");
        if (minNewTokens > maxNewTokens) {
            throw new IllegalArgumentException("--min-new-tokens " + minNewTokens + " is more than --max-new-tokens " + maxNewTokens);
        }
        if (temperature == null && (topK != null || topP != null || seed != null)) {
            throw new IllegalArgumentException("--top-k, --top-p and --seed shape sampling: give --temperature too");
        }
        Sampler sampler = sampler();
        Path dir = model.resolve();
        if (Models.isTextClassifier(dir)) throw new IllegalArgumentException("--model " + dir + " is a text classifier, not a causal LM: use classify --text");
        if (input.prompts != null || input.promptsIds != null) return generateMany(dir);
        try (LanguageModel lm = Models.loadLanguageModel(dir, device.device, device.precision)) {
            BpeTokenizer tokenizer = input.prompt != null || !printIds ? tokenizer(dir) : null;
            int[] prompt = input.prompt != null ? tokenizer.encode(input.prompt) : TokenIds.parse(input.tokenIds);
            if (prompt.length == 0) throw new IllegalArgumentException("--prompt encodes to no tokens");
            PrintStream out = new PrintStream(System.out, true, StandardCharsets.UTF_8);
            StreamingDecoder text = tokenizer == null ? null : new StreamingDecoder(tokenizer);
            if (!printIds) for (int id : prompt) out.print(text.accept(id));

            long total = (long) prompt.length + maxNewTokens;
            checkPositions(lm, prompt.length, "");
            // Grown as tokens come, so a large --max-new-tokens costs memory only for the tokens actually generated.
            int[] ids = Arrays.copyOf(prompt, prompt.length + Math.min(maxNewTokens, 1024));
            int n = prompt.length;
            LanguageModel.State state = lm.newState();
            float[] logits = Finite.outputs(lm.prefill(prompt, state), dir);
            long start = System.nanoTime();
            while (n < total) {
                if (n - prompt.length < minNewTokens) logits[lm.eosTokenId()] = Float.NEGATIVE_INFINITY;
                int next = sampler.next(logits);
                if (n == ids.length) ids = Arrays.copyOf(ids, (int) Math.min(total, 2L * n));
                ids[n++] = next;
                if (!printIds) out.print(text.accept(next));
                if (next == lm.eosTokenId() && !ignoreEos) break;
                if (n < total) logits = Finite.outputs(lm.step(next, state), dir);
            }
            double seconds = (System.nanoTime() - start) / 1e9;
            if (printIds) out.println(TokenIds.format(Arrays.copyOf(ids, n)));
            else out.println(text.flush());
            System.err.printf("[%d prompt tokens, %d generated, %.1f tokens/s]%n", prompt.length, n - prompt.length,
                    (n - prompt.length) / Math.max(seconds, 1e-9));
        }
        return 0;
    }

    /** A new sampler as the options ask (each sequence of a batch gets its own, seeded as it would be alone). */
    private Sampler sampler() {
        return temperature == null ? Sampler.greedy()
                : Sampler.sampling(temperature, topK == null ? 0 : topK, topP == null ? 1f : topP, seed == null ? 0 : seed);
    }

    private void checkPositions(LanguageModel lm, int promptTokens, String which) {
        if ((long) promptTokens + maxNewTokens > lm.maxPositions()) {
            throw new IllegalArgumentException("--max-new-tokens " + maxNewTokens + ": the " + promptTokens + " prompt tokens" + which + " and "
                    + maxNewTokens + " new ones exceed the model's " + lm.maxPositions() + " positions (max_position_embeddings)");
        }
    }

    /** --prompts / --prompts-ids: every line's prompt generated together, one output line per prompt, in order. */
    private int generateMany(Path dir) {
        Path file = input.prompts != null ? input.prompts : input.promptsIds;
        String option = input.prompts != null ? "--prompts" : "--prompts-ids";
        List<String> lines;
        try {
            lines = Files.readAllLines(InputFile.wholeInMemory(file, 4), StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new IllegalArgumentException(option + " " + file + ": cannot read: " + e.getMessage());
        }
        if (lines.isEmpty()) throw new IllegalArgumentException(option + " " + file + ": no prompts (the file is empty)");
        try (LanguageModel lm = Models.loadLanguageModel(dir, device.device, device.precision)) {
            BpeTokenizer tokenizer = input.prompts != null || !printIds ? tokenizer(dir) : null;
            int[][] prompts = new int[lines.size()][];
            Sampler[] samplers = new Sampler[prompts.length];
            for (int i = 0; i < prompts.length; i++) {
                String where = where(option, file, i);
                try {
                    prompts[i] = input.prompts != null ? tokenizer.encode(lines.get(i)) : TokenIds.parse(lines.get(i));
                } catch (IllegalArgumentException e) {
                    throw new IllegalArgumentException(where + ": " + e.getMessage());
                }
                if (prompts[i].length == 0) throw new IllegalArgumentException(where + ": the prompt encodes to no tokens");
                checkPositions(lm, prompts[i].length, " of " + where);
                samplers[i] = sampler();
            }
            long start = System.nanoTime();
            int[][] generated = new int[prompts.length][];
            var options = new BatchGeneration.Options(maxNewTokens, minNewTokens, !ignoreEos);
            for (int from = 0; from < prompts.length; from += batchSize) {
                int to = Math.min(prompts.length, from + batchSize);
                try {
                    int[][] part = BatchGeneration.generate(lm, Arrays.copyOfRange(prompts, from, to), Arrays.copyOfRange(samplers, from, to), options);
                    System.arraycopy(part, 0, generated, from, part.length);
                } catch (BatchGeneration.NonFiniteLogits e) {
                    throw new CheckpointException(dir, "the model computed NaN or an infinity for " + where(option, file, from + e.prompt())
                            + ": its weights hold NaN or infinity, or overflow float32");
                }
                if (prompts.length > batchSize) System.err.printf("[%d of %d prompts]%n", to, prompts.length);
            }
            double seconds = (System.nanoTime() - start) / 1e9;
            PrintStream out = new PrintStream(System.out, false, StandardCharsets.UTF_8);
            ObjectMapper json = new ObjectMapper();
            long promptTokens = 0, newTokens = 0;
            for (int i = 0; i < prompts.length; i++) {
                int[] ids = Arrays.copyOf(prompts[i], prompts[i].length + generated[i].length);
                System.arraycopy(generated[i], 0, ids, prompts[i].length, generated[i].length);
                promptTokens += prompts[i].length;
                newTokens += generated[i].length;
                if (printIds) {
                    out.println(TokenIds.format(ids));
                } else {
                    ObjectNode line = json.createObjectNode().put("index", i).put("prompt_tokens", prompts[i].length)
                            .put("generated_tokens", generated[i].length).put("text", tokenizer.decode(ids));
                    out.println(line.toString());
                }
            }
            out.flush();
            System.err.printf("[%d prompts, %d prompt tokens, %d generated, %.1f tokens/s with the prefills]%n", prompts.length, promptTokens,
                    newTokens, newTokens / Math.max(seconds, 1e-9));
        }
        return 0;
    }

    private static String where(String option, Path file, int prompt) {
        return option + " " + file + ", line " + (prompt + 1);
    }

    private static BpeTokenizer tokenizer(Path dir) {
        Path file = dir.resolve("tokenizer.json");
        if (!Files.isRegularFile(file)) throw new IllegalArgumentException(file + ": no tokenizer.json; give --token-ids and --print-ids instead");
        return BpeTokenizer.load(file);
    }
}
