package org.mambalens.engine.cuda;

import java.lang.foreign.MemorySegment;

/** A captured sequence of launches, replayed with one {@code cuGraphLaunch} (decode steps: hundreds of small kernels). */
public final class Graph implements AutoCloseable {
    private final Gpu gpu;
    private final MemorySegment graph, exec;
    private boolean closed;

    Graph(Gpu gpu, MemorySegment graph, MemorySegment exec) {
        this.gpu = gpu;
        this.graph = graph;
        this.exec = exec;
    }

    public void launch() {
        gpu.cu.check("cuGraphLaunch", gpu.cu.cuGraphLaunch(exec, gpu.stream()));
    }

    @Override
    public void close() {
        if (closed) return;
        closed = true;
        gpu.cu.cuGraphExecDestroy(exec);
        gpu.cu.cuGraphDestroy(graph);
    }
}
