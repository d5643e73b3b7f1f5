#pragma once

// The device's side of a queue whose chains are each served once, in one
// go (virtio-blk requests, virtio-vsock TX packets): pop, serve, return
// (virtio 1.2 §2.7.13 and §2.7.8), with the fault handling every such
// device needs. The vsock RX queue keeps chains across passes and has its
// own loop.

#include <cstdint>

#include "vmm/virtio/device.hpp"
#include "vmm/virtio/queue.hpp"

namespace pv::vmm::virtio {

// Serves QUEUE's available chains while MORE() allows and the driver has
// posted any. SERVE(chain) handles one and returns how many bytes it wrote
// into it. SERVE sees a chain the queue refused as nullptr (to count it);
// such a chain goes back to the driver unread, with length 0, unless its
// head lies outside the table: that names no chain and cannot be returned.
// A ring we cannot trust, or a used ring we cannot write, needs a reset by
// the driver (§2.1.2) and ends the pass. The driver gets one used-buffer
// notification for the pass if a chain went back.
template <class More, class Serve>
void serve_queue(Queue& queue, Interrupt& interrupt, More more, Serve serve) {
    bool used = false;
    while (more()) {
        auto next = queue.pop();
        if (!next && next.error().fatal) {
            interrupt.signal_device_error();
            break;
        }
        if (next && !*next)
            break;
        const uint16_t head = next ? (*next)->head : next.error().head;
        const uint32_t length = serve(next ? &**next : nullptr);
        if (head >= queue.layout().size)
            continue;
        if (!queue.add_used(head, next ? length : 0)) {
            interrupt.signal_device_error();
            break;
        }
        used = true;
    }
    if (used)
        interrupt.signal_used_buffer();
}

template <class Serve>
void serve_queue(Queue& queue, Interrupt& interrupt, Serve serve) {
    const auto always = [] { return true; };
    serve_queue(queue, interrupt, always, serve);
}

}  // namespace pv::vmm::virtio
