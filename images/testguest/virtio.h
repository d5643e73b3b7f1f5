/* A minimal virtio-mmio driver for the test guest (virtio 1.2 §4.2 transport,
   §2.7 split virtqueues, §3.1.1 initialization). Shared by the guest's
   virtio-blk modes (blk.c), its vsock driver and its agent mode.

   Usage:
     static struct virtio_device dev;     // static: it holds the rings
     virtio_map_windows();                // once, at CPL0, after cpu_setup
     if (virtio_find(&dev, VIRTIO_ID_BLOCK, cmdline) == 0 &&
         virtio_start(&dev, wanted_device_features, 1) == 0) {
         struct virtq_buffer bufs[] = {{&header, 16, 0}, {data, 512, 1}, ...};
         int head = virtq_post(&dev.queues[0], bufs, 3);
         virtio_notify(&dev, 0);
         uint32_t len;
         while (virtq_take(&dev.queues[0], &len) < 0) ;   // or sleep on the irq
     }

   Everything except virtio_map_windows and virtio_enable_irq works at CPL3
   (the windows are mapped user-accessible, the rings live in the guest
   image, which allow_user_access makes user-accessible), so hot loops can
   run there without a port I/O or privileged instruction. */
#pragma once

#include <stdint.h>

#define VIRTIO_MAGIC 0x74726976u /* "virt" */
#define VIRTIO_ID_BLOCK 2
#define VIRTIO_ID_VSOCK 19

/* §4.2.2 register offsets. */
#define VIRTIO_MMIO_MAGIC 0x000
#define VIRTIO_MMIO_VERSION 0x004
#define VIRTIO_MMIO_DEVICE_ID 0x008
#define VIRTIO_MMIO_DEVICE_FEATURES 0x010
#define VIRTIO_MMIO_DEVICE_FEATURES_SEL 0x014
#define VIRTIO_MMIO_DRIVER_FEATURES 0x020
#define VIRTIO_MMIO_DRIVER_FEATURES_SEL 0x024
#define VIRTIO_MMIO_QUEUE_SEL 0x030
#define VIRTIO_MMIO_QUEUE_NUM_MAX 0x034
#define VIRTIO_MMIO_QUEUE_NUM 0x038
#define VIRTIO_MMIO_QUEUE_READY 0x044
#define VIRTIO_MMIO_QUEUE_NOTIFY 0x050
#define VIRTIO_MMIO_INTERRUPT_STATUS 0x060
#define VIRTIO_MMIO_INTERRUPT_ACK 0x064
#define VIRTIO_MMIO_STATUS 0x070
#define VIRTIO_MMIO_QUEUE_DESC_LOW 0x080
#define VIRTIO_MMIO_QUEUE_DESC_HIGH 0x084
#define VIRTIO_MMIO_QUEUE_DRIVER_LOW 0x090
#define VIRTIO_MMIO_QUEUE_DRIVER_HIGH 0x094
#define VIRTIO_MMIO_QUEUE_DEVICE_LOW 0x0a0
#define VIRTIO_MMIO_QUEUE_DEVICE_HIGH 0x0a4
#define VIRTIO_MMIO_CONFIG 0x100

/* §2.1 status bits. */
#define VIRTIO_STATUS_ACKNOWLEDGE 1
#define VIRTIO_STATUS_DRIVER 2
#define VIRTIO_STATUS_DRIVER_OK 4
#define VIRTIO_STATUS_FEATURES_OK 8
#define VIRTIO_STATUS_NEEDS_RESET 64
#define VIRTIO_STATUS_FAILED 128

/* §4.2.2 InterruptStatus bits. */
#define VIRTIO_INTERRUPT_USED 1
#define VIRTIO_INTERRUPT_CONFIG 2

#define VIRTIO_FEATURE_VERSION_1 (1ull << 32)

/* §2.7.5 descriptor flags. */
#define VIRTQ_DESC_F_NEXT 1
#define VIRTQ_DESC_F_WRITE 2
#define VIRTQ_DESC_F_INDIRECT 4

/* Queue size every queue of this driver uses (the device may allow more). */
#define VIRTQ_SIZE 64
#define VIRTIO_MAX_QUEUES 3 /* vsock: rx, tx, event */
#define VIRTIO_MAX_DEVICES 8
/* The VMM's windows: layout::kVirtioMmioBase + i * 4 KiB. */
#define VIRTIO_MMIO_BASE 0xd0000000ull
#define VIRTIO_MMIO_WINDOW 0x1000ull

struct virtq_desc {
    uint64_t addr;
    uint32_t len;
    uint16_t flags;
    uint16_t next;
};

struct virtq_avail {
    uint16_t flags;
    uint16_t idx;
    uint16_t ring[VIRTQ_SIZE];
    uint16_t used_event;
};

struct virtq_used_elem {
    uint32_t id;
    uint32_t len;
};

struct virtq_used {
    uint16_t flags;
    uint16_t idx;
    struct virtq_used_elem ring[VIRTQ_SIZE];
    uint16_t avail_event;
};

/* One split virtqueue with its rings (§2.7: alignments 16, 2, 4). Fields
   after the rings are the driver's own bookkeeping. Tests that build bad
   chains write desc[] and avail directly, then call virtq_publish. */
struct virtq {
    struct virtq_desc desc[VIRTQ_SIZE] __attribute__((aligned(16)));
    struct virtq_avail avail __attribute__((aligned(2)));
    struct virtq_used used __attribute__((aligned(4)));
    uint16_t index;     /* queue number on the device */
    uint16_t free_head; /* free descriptors, linked through link[] */
    uint16_t free_count;
    uint16_t used_seen; /* used.idx value consumed so far */
    /* The driver's own copy of the links (free list and posted chains), so
       a test may corrupt desc[] without corrupting the driver. */
    uint16_t link[VIRTQ_SIZE];
    uint16_t chain_length[VIRTQ_SIZE]; /* per head posted by virtq_post */
};

struct virtio_device {
    struct virtq queues[VIRTIO_MAX_QUEUES];
    volatile uint8_t* base; /* the MMIO window */
    uint32_t device_id;
    uint32_t irq; /* GSI from "virtio_mmio.device=4K@BASE:IRQ" */
    uint32_t queue_count;
    uint64_t features;                /* negotiated, VERSION_1 included */
    volatile uint64_t interrupts;     /* counted by virtio_handle_irq */
    volatile uint32_t interrupt_bits; /* InterruptStatus bits seen, ORed */
};

/* One buffer of a chain: device_writable 0 = the device reads it. */
struct virtq_buffer {
    const void* address;
    uint32_t length;
    uint32_t device_writable;
};

/* CPL0, once: maps the virtio-mmio windows (uncached, user-accessible) into
   the guest page tables, which the VMM builds for the first GiB only. */
void virtio_map_windows(void);

/* Probes the windows for the magic value and DEVICE_ID (0 if found); the
   IRQ comes from the command line the VMM wrote, with the window's base. */
int virtio_find(struct virtio_device* dev, uint32_t device_id, const char* cmdline);

/* §3.1.1: reset, ACKNOWLEDGE, DRIVER, features (the device's offer ANDed
   with WANTED, plus VERSION_1), FEATURES_OK (checked), QUEUES queues of
   VIRTQ_SIZE, DRIVER_OK. 0 on success, otherwise a negative step number. */
int virtio_start(struct virtio_device* dev, uint64_t wanted, uint32_t queues);
void virtio_reset(struct virtio_device* dev);
uint32_t virtio_status(const struct virtio_device* dev);
uint64_t virtio_device_features(struct virtio_device* dev);

uint32_t virtio_read32(const struct virtio_device* dev, uint32_t offset);
void virtio_write32(const struct virtio_device* dev, uint32_t offset, uint32_t value);
/* Device config space (offset from 0x100). */
uint32_t virtio_config32(const struct virtio_device* dev, uint32_t offset);
uint64_t virtio_config64(const struct virtio_device* dev, uint32_t offset);

/* Chains COUNT buffers and makes the chain available; returns its head
   descriptor or -1 when the queue has no room. Does not notify. */
int virtq_post(struct virtq* queue, const struct virtq_buffer* buffers, int count);
/* virtq_post without making the chain available: a test may then change
   desc[] (head, link[head], ...) before virtq_publish. */
int virtq_prepare(struct virtq* queue, const struct virtq_buffer* buffers, int count);
/* Makes HEAD available (also a head the driver never prepared). */
void virtq_publish(struct virtq* queue, uint16_t head);
/* The next used element: its id (a head), LENGTH gets the used length;
   -1 when the device has returned nothing new. */
int virtq_take(struct virtq* queue, uint32_t* length);
/* QueueNotify: the VMM catches it with an ioeventfd. */
void virtio_notify(const struct virtio_device* dev, uint32_t queue);

/* Interrupts (CPL0): unmasks the device's IRQ at the 8259A master or slave;
   virtio_handle_irq, called from the guest's interrupt handler, reads and
   acknowledges InterruptStatus for the device on VECTOR and returns 1 if it
   was one of ours (it sends the EOI then). */
void virtio_enable_irq(struct virtio_device* dev);
int virtio_handle_irq(uint64_t vector);
