package org.mambalens.weights;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.util.Map;
import java.util.Optional;

/**
 * The config.json of an official Vision Mamba (hustvl/Vim) state dict, read off its key names and
 * shapes (DESIGN §5). Fields that the weights cannot show (the middle cls token, "div2" averaging) take
 * the values of the released bimambav2 midclstok div2 checkpoints.
 */
final class VimConfigGuess {
    private VimConfigGuess() {
    }

    static Optional<ObjectNode> from(Map<String, PthReader.TensorData> t) {
        PthReader.TensorData patch = t.get("patch_embed.proj.weight"), pos = t.get("pos_embed"), head = t.get("head.weight"),
                aLog = t.get("layers.0.mixer.A_log"), xProj = t.get("layers.0.mixer.x_proj.weight");
        if (patch == null || pos == null || head == null || aLog == null || xProj == null || !t.containsKey("layers.0.mixer.A_b_log")) {
            return Optional.empty();
        }
        int depth = 0;
        while (t.containsKey("layers." + depth + ".mixer.in_proj.weight")) depth++;
        long embed = patch.shape()[0], channels = patch.shape()[1], patchSize = patch.shape()[2];
        long tokens = pos.shape()[1], stateSize = aLog.shape()[1], inner = aLog.shape()[0];
        boolean cls = t.containsKey("cls_token");
        long grid = Math.round(Math.sqrt(tokens - (cls ? 1 : 0)));
        if (grid * grid != tokens - (cls ? 1 : 0)) return Optional.empty();
        ObjectNode c = new ObjectMapper().createObjectNode();
        c.put("model_type", "vim");
        c.putArray("architectures").add("VisionMamba");
        c.put("img_size", grid * patchSize);
        c.put("patch_size", patchSize);
        c.put("channels", channels);
        c.put("embed_dim", embed);
        c.put("depth", depth);
        c.put("d_state", stateSize);
        c.put("d_inner", inner);
        c.put("dt_rank", xProj.shape()[0] - 2 * stateSize);
        c.put("d_conv", t.get("layers.0.mixer.conv1d.weight").shape()[2]);
        c.put("num_classes", head.shape()[0]);
        c.put("use_middle_cls_token", cls);
        c.put("if_divide_out", true);
        c.put("bimamba_type", "v2");
        c.put("inferred_by", "mambalens convert: from key names and shapes; use_middle_cls_token and if_divide_out assumed");
        return Optional.of(c);
    }
}
