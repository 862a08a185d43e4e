package org.mambalens.cli;

import org.mambalens.engine.model.LanguageModel;
import org.mambalens.engine.model.Models;
import org.mambalens.engine.text.BpeTokenizer;
import org.mambalens.engine.text.Sampler;
import org.mambalens.engine.text.StreamingDecoder;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
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

    @Option(names = "--min-new-tokens", paramLabel = "N", defaultValue = "0", converter = Counts.NonNegative.class,
            description = "Never pick the end-of-sequence token before N new tokens (transformers' min_new_tokens).")
    int minNewTokens;

    @Override
    public Integer call() {
        if (greedy && temperature != null) throw new IllegalArgumentException("--greedy and --temperature exclude each other");
        if (temperature == null && (topK != null || topP != null || seed != null)) {
            throw new IllegalArgumentException("--top-k, --top-p and --seed shape sampling: give --temperature too");
        }
        Sampler sampler = temperature == null ? Sampler.greedy()
                : Sampler.sampling(temperature, topK == null ? 0 : topK, topP == null ? 1f : topP, seed == null ? 0 : seed);
        Path dir = model.resolve();
        if (Models.isTextClassifier(dir)) throw new IllegalArgumentException("--model " + dir + " is a text classifier, not a causal LM: use classify --text");
        try (LanguageModel lm = Models.loadLanguageModel(dir, device.device, device.precision)) {
            BpeTokenizer tokenizer = input.prompt != null || !printIds ? tokenizer(dir) : null;
            int[] prompt = input.prompt != null ? tokenizer.encode(input.prompt) : TokenIds.parse(input.tokenIds);
            if (prompt.length == 0) throw new IllegalArgumentException("--prompt encodes to no tokens");
            PrintStream out = new PrintStream(System.out, true, StandardCharsets.UTF_8);
            StreamingDecoder text = tokenizer == null ? null : new StreamingDecoder(tokenizer);
            if (!printIds) for (int id : prompt) out.print(text.accept(id));

            long total = (long) prompt.length + maxNewTokens;
            if (total > lm.maxPositions()) {
                throw new IllegalArgumentException("--max-new-tokens " + maxNewTokens + ": the " + prompt.length + " prompt tokens and " + maxNewTokens
                        + " new ones exceed the model's " + lm.maxPositions() + " positions (max_position_embeddings)");
            }
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

    private static BpeTokenizer tokenizer(Path dir) {
        Path file = dir.resolve("tokenizer.json");
        if (!Files.isRegularFile(file)) throw new IllegalArgumentException(file + ": no tokenizer.json; give --token-ids and --print-ids instead");
        return BpeTokenizer.load(file);
    }
}
