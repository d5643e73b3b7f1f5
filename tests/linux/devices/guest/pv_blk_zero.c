// pv-blk-zero: zeroes a byte range of a block device with fallocate(2),
// which Linux turns into virtio-blk WRITE_ZEROES requests (busybox has no
// tool for it): "zero" is FALLOC_FL_ZERO_RANGE (the device may not unmap),
// "punch" is FALLOC_FL_PUNCH_HOLE (the unmap flag set).
//
//   pv-blk-zero zero|punch DEVICE OFFSET LENGTH
//
// Exit status 0 when the kernel reports the range zeroed.

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char** argv) {
    if (argc != 5 || (strcmp(argv[1], "zero") != 0 && strcmp(argv[1], "punch") != 0)) {
        fprintf(stderr, "usage: pv-blk-zero zero|punch DEVICE OFFSET LENGTH\n");
        return 2;
    }
    const int mode = strcmp(argv[1], "zero") == 0 ? FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE
                                                  : FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE;
    const off_t offset = (off_t)strtoull(argv[3], NULL, 0);
    const off_t length = (off_t)strtoull(argv[4], NULL, 0);
    int fd = open(argv[2], O_RDWR | O_CLOEXEC);
    if (fd < 0 || fallocate(fd, mode, offset, length) != 0 || fsync(fd) != 0) {
        fprintf(stderr, "pv-blk-zero: %s %s: %s\n", argv[1], argv[2], strerror(errno));
        return 1;
    }
    return 0;
}
