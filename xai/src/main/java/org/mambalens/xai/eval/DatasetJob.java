package org.mambalens.xai.eval;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.nio.file.Path;
import java.util.SortedMap;

/**
 * A job over the items of a dataset, cut where it can be spread over machines: {@link #item} computes one
 * item's result as a JSON object (on a thread of this machine, or on a Spark executor), {@link #write} turns
 * the results of all items into the job's files. The single-machine commands and the Spark job call the
 * same two functions, which is why their results.json agree.
 *
 * <p>{@link #item} is called from several threads at once. Closing releases the models the job loaded.
 */
public interface DatasetJob extends AutoCloseable {
    /** Items in the dataset; a run takes the first {@code min(limit, size())}. */
    int size();

    /** What an item is called in progress lines: images, texts, inputs. */
    String unit();

    /** Item {@code i}'s result; an exception says why this item failed. */
    ObjectNode item(int i);

    /** Writes the job's files into {@code out} from the results by item index; returns the main one (results.json). */
    Path write(Path out, SortedMap<Integer, JsonNode> results);

    @Override
    void close();
}
