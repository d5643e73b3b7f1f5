/* Entry, interrupt stubs and the CPL0 <-> CPL3 switch of the test guest.
   Nothing here uses an instruction shared/PVM.md lists as fatal at CPL0
   (int3, popcnt, SSE, xgetbv, xrstor, clac). */

#define KERNEL_DATA 0x18
#define USER_DATA   0x23
#define USER_CODE   0x2b

    .section .text.entry, "ax"
    .code64
    .globl _start
/* 64-bit boot protocol entry (Linux boot.rst): long mode, paging on, rsi =
   boot_params. */
_start:
    cli
    movq $stack_top, %rsp
    movq %rsi, %rdi
    call guest_main
1:  hlt
    jmp 1b

    .text
/* One stub per vector: push a dummy error code where the CPU pushes none,
   then the vector number, and join the common path. */
.macro STUB vector, has_error
    .globl isr_\vector
isr_\vector:
    .if \has_error == 0
    pushq $0
    .endif
    pushq $\vector
    jmp isr_common
.endm

STUB 0,0; STUB 1,0; STUB 2,0; STUB 3,0; STUB 4,0; STUB 5,0; STUB 6,0; STUB 7,0
STUB 8,1; STUB 9,0; STUB 10,1; STUB 11,1; STUB 12,1; STUB 13,1; STUB 14,1; STUB 15,0
STUB 16,0; STUB 17,1; STUB 18,0; STUB 19,0; STUB 20,0; STUB 21,1
STUB 32,0; STUB 33,0; STUB 34,0; STUB 35,0; STUB 36,0; STUB 37,0; STUB 38,0; STUB 39,0
STUB 40,0; STUB 41,0; STUB 42,0; STUB 43,0; STUB 44,0; STUB 45,0; STUB 46,0; STUB 47,0

/* Saves the general registers in the layout of struct frame (testguest.h),
   calls the C handler with a pointer to it and returns with iretq. */
isr_common:
    pushq %rax; pushq %rbx; pushq %rcx; pushq %rdx; pushq %rsi; pushq %rdi; pushq %rbp
    pushq %r8; pushq %r9; pushq %r10; pushq %r11; pushq %r12; pushq %r13; pushq %r14; pushq %r15
    movq %rsp, %rdi
    call interrupt_handler
    popq %r15; popq %r14; popq %r13; popq %r12; popq %r11; popq %r10; popq %r9; popq %r8
    popq %rbp; popq %rdi; popq %rsi; popq %rdx; popq %rcx; popq %rbx; popq %rax
    addq $16, %rsp
    iretq

/* uint64_t enter_user(void (*entry)(void), void *stack): runs entry at CPL3
   and returns the value the user code hands to leave_user (via ud2). */
    .globl enter_user
enter_user:
    pushq %rbx; pushq %rbp; pushq %r12; pushq %r13; pushq %r14; pushq %r15
    movq %rsp, kernel_saved_rsp
    pushq $USER_DATA
    pushq %rsi
    pushq $0x2
    pushq $USER_CODE
    pushq %rdi
    iretq

/* noreturn void leave_user(uint64_t value): called by the #UD handler for a
   fault from CPL3; drops the exception frame and returns from enter_user. */
    .globl leave_user
leave_user:
    movq kernel_saved_rsp, %rsp
    movw $KERNEL_DATA, %ax
    movw %ax, %ss
    movq %rdi, %rax
    popq %r15; popq %r14; popq %r13; popq %r12; popq %rbp; popq %rbx
    ret

/* uint64_t probe_read(uint64_t address): reads 8 bytes; when the read faults
   the #PF handler resumes at probe_fault, which returns ~0. */
    .globl probe_read, probe_read_access, probe_fault
probe_read:
probe_read_access:
    movq (%rdi), %rax
    ret
probe_fault:
    movq $-1, %rax
    ret

    .bss
    .balign 16
kernel_saved_rsp:
    .quad 0
    .balign 4096
    .space 16384
stack_top:

/* PVH entry (Xen's HVM direct boot ABI, as QEMU implements it for -kernel
   ELF images with a XEN_ELFNOTE_PHYS32_ENTRY note): 32-bit protected mode,
   paging off, ebx = struct hvm_start_info. Builds the same identity map the
   patchvisor VMM provides, enters long mode and continues in pvh_main. Only
   the QEMU side of bench/boot uses it. */
    .section .note.pvh, "a", @note
    .balign 4
    .long 4                 /* name size: "Xen\0" */
    .long 4                 /* descriptor size */
    .long 18                /* XEN_ELFNOTE_PHYS32_ENTRY */
    .asciz "Xen"
    .balign 4
    .long pvh_start
    .balign 4

    .text
    .code32
    .globl pvh_start
pvh_start:
    cli
    movl %ebx, %esi
    movl $pvh_pdpt + 3, pvh_pml4
    movl $pvh_pd + 3, pvh_pdpt
    xorl %ecx, %ecx
1:  movl %ecx, %eax
    shll $21, %eax
    orl $0x83, %eax                 /* present, writable, 2 MiB page */
    movl %eax, pvh_pd(,%ecx,8)
    movl $0, pvh_pd + 4(,%ecx,8)
    incl %ecx
    cmpl $512, %ecx
    jb 1b
    movl $pvh_pml4, %eax
    movl %eax, %cr3
    movl %cr4, %eax
    orl $0x20, %eax                 /* PAE */
    movl %eax, %cr4
    movl $0xc0000080, %ecx          /* EFER.LME */
    rdmsr
    orl $0x100, %eax
    wrmsr
    movl %cr0, %eax
    orl $0x80000001, %eax           /* PG and PE */
    movl %eax, %cr0
    lgdt pvh_gdt_pointer
    ljmp $0x10, $pvh_long_mode

    .code64
pvh_long_mode:
    movw $KERNEL_DATA, %ax
    movw %ax, %ds
    movw %ax, %es
    movw %ax, %ss
    movq $stack_top, %rsp
    movl %esi, %edi
    call pvh_main
2:  hlt
    jmp 2b

    .data
    .balign 8
pvh_gdt_pointer:
    .word 63
    .long guest_gdt

    .bss
    .balign 4096
pvh_pml4:
    .space 4096
pvh_pdpt:
    .space 4096
pvh_pd:
    .space 4096
