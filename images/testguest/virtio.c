/* The test guest's virtio-mmio driver (see virtio.h). Written for clarity
   over speed, but the per-request path (virtq_post, virtio_notify,
   virtq_take) touches only guest memory and one MMIO register, so it runs
   at CPL3 at native speed under kvm_pvm (shared/PVM.md). */
#include "virtio.h"

#include "testguest.h"

#define PAGE_PRESENT 1ull
#define PAGE_WRITABLE 2ull
#define PAGE_USER 4ull
#define PAGE_WRITE_THROUGH 8ull
#define PAGE_CACHE_DISABLE 16ull
#define PAGE_SIZE_2MIB 128ull

#define PIC1_DATA 0x21
#define PIC2_DATA 0xa1
#define PIC1_COMMAND 0x20
#define PIC2_COMMAND 0xa0

/* The page directory for 3..4 GiB, where the VMM's MMIO gap is. */
static uint64_t gap_directory[512] __attribute__((aligned(4096)));

/* Devices whose interrupts virtio_handle_irq serves. */
static struct virtio_device* irq_devices[VIRTIO_MAX_DEVICES];

static inline void compiler_barrier(void) {
    __asm__ volatile("" ::: "memory");
}

void virtio_map_windows(void) {
    uint64_t cr3;
    __asm__ volatile("mov %%cr3, %0" : "=r"(cr3));
    uint64_t* pml4 = (uint64_t*)(cr3 & ~0xfffull);
    uint64_t* pdpt = (uint64_t*)(pml4[0] & ~0xfffull);
    /* One 2 MiB page covers all windows; uncached like any MMIO (SDM 11.12). */
    uint64_t base = VIRTIO_MMIO_BASE & ~((1ull << 30) - 1);
    uint64_t slot = (VIRTIO_MMIO_BASE - base) >> 21;
    gap_directory[slot] = VIRTIO_MMIO_BASE | PAGE_PRESENT | PAGE_WRITABLE | PAGE_USER |
                          PAGE_WRITE_THROUGH | PAGE_CACHE_DISABLE | PAGE_SIZE_2MIB;
    pdpt[VIRTIO_MMIO_BASE >> 30] =
        (uint64_t)gap_directory | PAGE_PRESENT | PAGE_WRITABLE | PAGE_USER;
    pml4[0] |= PAGE_USER;
    __asm__ volatile("mov %0, %%cr3" : : "r"(cr3) : "memory");
}

uint32_t virtio_read32(const struct virtio_device* dev, uint32_t offset) {
    return *(volatile uint32_t*)(dev->base + offset);
}

void virtio_write32(const struct virtio_device* dev, uint32_t offset, uint32_t value) {
    *(volatile uint32_t*)(dev->base + offset) = value;
}

uint32_t virtio_config32(const struct virtio_device* dev, uint32_t offset) {
    return virtio_read32(dev, VIRTIO_MMIO_CONFIG + offset);
}

uint64_t virtio_config64(const struct virtio_device* dev, uint32_t offset) {
    /* §4.2.2.2: 64-bit fields are read as two 32-bit halves. */
    uint64_t low = virtio_config32(dev, offset);
    return low | ((uint64_t)virtio_config32(dev, offset + 4) << 32);
}

uint32_t virtio_status(const struct virtio_device* dev) {
    return virtio_read32(dev, VIRTIO_MMIO_STATUS);
}

/* Parses the hex number at *TEXT, advancing it. */
static uint64_t parse_hex(const char** text) {
    uint64_t value = 0;
    for (;; ++*text) {
        char c = **text;
        if (c >= '0' && c <= '9')
            value = value * 16 + (uint64_t)(c - '0');
        else if (c >= 'a' && c <= 'f')
            value = value * 16 + (uint64_t)(c - 'a' + 10);
        else
            return value;
    }
}

/* The IRQ of the "virtio_mmio.device=4K@BASE:IRQ" entry naming BASE. */
static uint32_t irq_from_cmdline(const char* cmdline, uint64_t base) {
    static const char key[] = "virtio_mmio.device=4K@0x";
    for (const char* cursor = cmdline; (cursor = find_after(cursor, key)) != 0;) {
        if (parse_hex(&cursor) != base || *cursor != ':')
            continue;
        uint32_t irq = 0;
        for (++cursor; *cursor >= '0' && *cursor <= '9'; ++cursor)
            irq = irq * 10 + (uint32_t)(*cursor - '0');
        return irq;
    }
    return 0;
}

int virtio_find(struct virtio_device* dev, uint32_t device_id, const char* cmdline) {
    for (uint64_t index = 0; index < VIRTIO_MAX_DEVICES; ++index) {
        dev->base = (volatile uint8_t*)(VIRTIO_MMIO_BASE + index * VIRTIO_MMIO_WINDOW);
        /* An empty window reads all ones (the VMM's open bus). */
        if (virtio_read32(dev, VIRTIO_MMIO_MAGIC) != VIRTIO_MAGIC ||
            virtio_read32(dev, VIRTIO_MMIO_VERSION) != 2 ||
            virtio_read32(dev, VIRTIO_MMIO_DEVICE_ID) != device_id)
            continue;
        dev->device_id = device_id;
        dev->irq = irq_from_cmdline(cmdline, (uint64_t)dev->base);
        return 0;
    }
    dev->base = 0;
    return -1;
}

void virtio_reset(struct virtio_device* dev) {
    virtio_write32(dev, VIRTIO_MMIO_STATUS, 0);
}

uint64_t virtio_device_features(struct virtio_device* dev) {
    virtio_write32(dev, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0);
    uint64_t low = virtio_read32(dev, VIRTIO_MMIO_DEVICE_FEATURES);
    virtio_write32(dev, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 1);
    return low | ((uint64_t)virtio_read32(dev, VIRTIO_MMIO_DEVICE_FEATURES) << 32);
}

static void queue_init(struct virtq* queue, uint16_t index) {
    uint8_t* bytes = (uint8_t*)queue;
    for (unsigned long offset = 0; offset < sizeof(*queue); ++offset)
        bytes[offset] = 0;
    queue->index = index;
    /* All descriptors free, in one list. */
    for (uint16_t slot = 0; slot < VIRTQ_SIZE; ++slot)
        queue->link[slot] = (uint16_t)((slot + 1) % VIRTQ_SIZE);
    queue->free_head = 0;
    queue->free_count = VIRTQ_SIZE;
}

static int setup_queue(struct virtio_device* dev, uint16_t index) {
    struct virtq* queue = &dev->queues[index];
    virtio_write32(dev, VIRTIO_MMIO_QUEUE_SEL, index);
    if (virtio_read32(dev, VIRTIO_MMIO_QUEUE_READY) != 0 ||
        virtio_read32(dev, VIRTIO_MMIO_QUEUE_NUM_MAX) < VIRTQ_SIZE)
        return -1;
    queue_init(queue, index);
    virtio_write32(dev, VIRTIO_MMIO_QUEUE_NUM, VIRTQ_SIZE);
    uint64_t desc = (uint64_t)queue->desc, avail = (uint64_t)&queue->avail,
             used = (uint64_t)&queue->used;
    virtio_write32(dev, VIRTIO_MMIO_QUEUE_DESC_LOW, (uint32_t)desc);
    virtio_write32(dev, VIRTIO_MMIO_QUEUE_DESC_HIGH, (uint32_t)(desc >> 32));
    virtio_write32(dev, VIRTIO_MMIO_QUEUE_DRIVER_LOW, (uint32_t)avail);
    virtio_write32(dev, VIRTIO_MMIO_QUEUE_DRIVER_HIGH, (uint32_t)(avail >> 32));
    virtio_write32(dev, VIRTIO_MMIO_QUEUE_DEVICE_LOW, (uint32_t)used);
    virtio_write32(dev, VIRTIO_MMIO_QUEUE_DEVICE_HIGH, (uint32_t)(used >> 32));
    virtio_write32(dev, VIRTIO_MMIO_QUEUE_READY, 1);
    return virtio_read32(dev, VIRTIO_MMIO_QUEUE_READY) == 1 ? 0 : -1;
}

int virtio_start(struct virtio_device* dev, uint64_t wanted, uint32_t queues) {
    if (queues > VIRTIO_MAX_QUEUES)
        return -1;
    virtio_reset(dev);
    if (virtio_status(dev) != 0)
        return -1;
    uint32_t status = VIRTIO_STATUS_ACKNOWLEDGE;
    virtio_write32(dev, VIRTIO_MMIO_STATUS, status);
    status |= VIRTIO_STATUS_DRIVER;
    virtio_write32(dev, VIRTIO_MMIO_STATUS, status);
    uint64_t offered = virtio_device_features(dev);
    if (!(offered & VIRTIO_FEATURE_VERSION_1))
        return -2;
    dev->features = (offered & wanted) | VIRTIO_FEATURE_VERSION_1;
    virtio_write32(dev, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
    virtio_write32(dev, VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)dev->features);
    virtio_write32(dev, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
    virtio_write32(dev, VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)(dev->features >> 32));
    status |= VIRTIO_STATUS_FEATURES_OK;
    virtio_write32(dev, VIRTIO_MMIO_STATUS, status);
    if (!(virtio_status(dev) & VIRTIO_STATUS_FEATURES_OK))
        return -3;
    for (uint32_t index = 0; index < queues; ++index) {
        if (setup_queue(dev, (uint16_t)index) != 0)
            return -4;
    }
    dev->queue_count = queues;
    status |= VIRTIO_STATUS_DRIVER_OK;
    virtio_write32(dev, VIRTIO_MMIO_STATUS, status);
    return virtio_status(dev) == status ? 0 : -5;
}

int virtq_post(struct virtq* queue, const struct virtq_buffer* buffers, int count) {
    int head = virtq_prepare(queue, buffers, count);
    if (head >= 0)
        virtq_publish(queue, (uint16_t)head);
    return head;
}

int virtq_prepare(struct virtq* queue, const struct virtq_buffer* buffers, int count) {
    if (count <= 0 || count > queue->free_count)
        return -1;
    uint16_t head = queue->free_head, slot = head;
    for (int index = 0; index < count; ++index) {
        struct virtq_desc* desc = &queue->desc[slot];
        desc->addr = (uint64_t)buffers[index].address;
        desc->len = buffers[index].length;
        desc->flags = (uint16_t)((buffers[index].device_writable ? VIRTQ_DESC_F_WRITE : 0) |
                                 (index + 1 < count ? VIRTQ_DESC_F_NEXT : 0));
        desc->next = queue->link[slot]; /* the chain follows the free list */
        slot = queue->link[slot];
    }
    queue->free_head = slot;
    queue->free_count = (uint16_t)(queue->free_count - count);
    queue->chain_length[head] = (uint16_t)count;
    return head;
}

void virtq_publish(struct virtq* queue, uint16_t head) {
    queue->avail.ring[queue->avail.idx % VIRTQ_SIZE] = head;
    /* §2.7.13.2: the ring entry before the index that publishes it (x86
       keeps stores in order; the barrier keeps the compiler from moving). */
    compiler_barrier();
    *(volatile uint16_t*)&queue->avail.idx = (uint16_t)(queue->avail.idx + 1);
    compiler_barrier();
}

int virtq_take(struct virtq* queue, uint32_t* length) {
    uint16_t published = *(volatile uint16_t*)&queue->used.idx;
    if (published == queue->used_seen)
        return -1;
    compiler_barrier();
    struct virtq_used_elem elem = queue->used.ring[queue->used_seen % VIRTQ_SIZE];
    queue->used_seen = (uint16_t)(queue->used_seen + 1);
    if (length)
        *length = elem.len;
    /* Give a chain made by virtq_prepare back to the free list, walking the
       driver's own links, never what is in desc[]. */
    if (elem.id < VIRTQ_SIZE && queue->chain_length[elem.id]) {
        uint16_t slot = (uint16_t)elem.id;
        for (uint16_t step = 1; step < queue->chain_length[elem.id]; ++step)
            slot = queue->link[slot];
        queue->link[slot] = queue->free_head;
        queue->free_head = (uint16_t)elem.id;
        queue->free_count = (uint16_t)(queue->free_count + queue->chain_length[elem.id]);
        queue->chain_length[elem.id] = 0;
    }
    return (int)elem.id;
}

void virtio_notify(const struct virtio_device* dev, uint32_t queue) {
    compiler_barrier();
    virtio_write32(dev, VIRTIO_MMIO_QUEUE_NOTIFY, queue);
}

void virtio_enable_irq(struct virtio_device* dev) {
    if (dev->irq == 0 || dev->irq >= 16)
        return;
    for (int slot = 0; slot < VIRTIO_MAX_DEVICES; ++slot) {
        if (!irq_devices[slot] || irq_devices[slot] == dev) {
            irq_devices[slot] = dev;
            break;
        }
    }
    if (dev->irq < 8) {
        outb(PIC1_DATA, (uint8_t)(inb(PIC1_DATA) & ~(1u << dev->irq)));
    } else {
        outb(PIC1_DATA, (uint8_t)(inb(PIC1_DATA) & ~(1u << 2))); /* cascade */
        outb(PIC2_DATA, (uint8_t)(inb(PIC2_DATA) & ~(1u << (dev->irq - 8))));
    }
}

int virtio_handle_irq(uint64_t vector) {
    if (vector < 32 || vector >= 48)
        return 0;
    uint32_t irq = (uint32_t)(vector - 32);
    int ours = 0;
    for (int slot = 0; slot < VIRTIO_MAX_DEVICES; ++slot) {
        struct virtio_device* dev = irq_devices[slot];
        if (!dev || dev->irq != irq)
            continue;
        ours = 1;
        /* §4.2.3.4: read the reasons, acknowledge exactly those. */
        uint32_t bits = virtio_read32(dev, VIRTIO_MMIO_INTERRUPT_STATUS);
        virtio_write32(dev, VIRTIO_MMIO_INTERRUPT_ACK, bits);
        dev->interrupt_bits |= bits;
        ++dev->interrupts;
    }
    if (ours) {
        if (irq >= 8)
            outb(PIC2_COMMAND, 0x20);
        outb(PIC1_COMMAND, 0x20);
    }
    return ours;
}
