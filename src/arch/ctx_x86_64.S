/* The context switch for x86-64 System V (arch/ctx.h).
 *
 * A suspended context is its stack pointer; below the return address on its
 * stack, the frame conc__ctx_switch pushed (64 bytes, 16-byte aligned):
 *
 *   sp + 0   MXCSR (4 bytes), x87 control word (2 bytes), 2 spare
 *   sp + 8   r15     sp + 16  r14     sp + 24  r13
 *   sp + 32  r12     sp + 40  rbx     sp + 48  rbp
 *   sp + 56  where to resume (the return address of the switch)
 *
 * conc__ctx_make writes the same frame for a new context: rbx = entry,
 * r12 = arg, rbp = 0 (a frame-pointer walk stops there), and conc__ctx_start
 * as the place to resume. The CFI follows every push and pop: both stacks'
 * frames have the same shape, so it stays true across the swap of rsp. */
#if defined(__x86_64__) && !defined(CONC_CTX_UCONTEXT)

#if defined(__CET__) && (__CET__ & 1)
#define CONC_ENDBR endbr64
#else
#define CONC_ENDBR
#endif

    .text

/* void *conc__ctx_switch(conc__ctx *from, conc__ctx *to, void *value)
 * rdi = from, rsi = to, rdx = value; returns in rax the value carried by
 * the switch that resumes from. */
    .globl conc__ctx_switch
    .hidden conc__ctx_switch
    .type conc__ctx_switch, @function
    .p2align 4
conc__ctx_switch:
    .cfi_startproc
    CONC_ENDBR
    pushq %rbp
    .cfi_adjust_cfa_offset 8
    pushq %rbx
    .cfi_adjust_cfa_offset 8
    pushq %r12
    .cfi_adjust_cfa_offset 8
    pushq %r13
    .cfi_adjust_cfa_offset 8
    pushq %r14
    .cfi_adjust_cfa_offset 8
    pushq %r15
    .cfi_adjust_cfa_offset 8
    subq $8, %rsp
    .cfi_adjust_cfa_offset 8
    stmxcsr (%rsp)
    fnstcw 4(%rsp)

    movq %rsp, (%rdi)
    movq (%rsi), %rsp

    ldmxcsr (%rsp)
    fldcw 4(%rsp)
    addq $8, %rsp
    .cfi_adjust_cfa_offset -8
    popq %r15
    .cfi_adjust_cfa_offset -8
    popq %r14
    .cfi_adjust_cfa_offset -8
    popq %r13
    .cfi_adjust_cfa_offset -8
    popq %r12
    .cfi_adjust_cfa_offset -8
    popq %rbx
    .cfi_adjust_cfa_offset -8
    popq %rbp
    .cfi_adjust_cfa_offset -8
    /* Not `ret`: the return stack predicts the caller of this switch, and
     * the place resumed is always another. */
    popq %rcx
    .cfi_adjust_cfa_offset -8
    movq %rdx, %rax
    jmpq *%rcx
    .cfi_endproc
    .size conc__ctx_switch, . - conc__ctx_switch

/* void conc__ctx_make(conc__ctx *ctx, void *lo, size_t size,
 *                     conc__ctx_entry entry, void *arg)
 * rdi = ctx, rsi = lo, rdx = size, rcx = entry, r8 = arg. */
    .globl conc__ctx_make
    .hidden conc__ctx_make
    .type conc__ctx_make, @function
    .p2align 4
conc__ctx_make:
    .cfi_startproc
    CONC_ENDBR
    leaq (%rsi,%rdx), %rax
    andq $-16, %rax
    /* 16 bytes on top: a null return address above conc__ctx_start, where
     * an unwinder stops; then the 64-byte frame. After the switch pops the
     * frame, rsp = top - 16: aligned, as a call needs it. */
    movq $0, -8(%rax)
    movq $0, -16(%rax)
    subq $80, %rax
    stmxcsr (%rax)
    fnstcw 4(%rax)
    xorl %r9d, %r9d
    movq %r9, 8(%rax)
    movq %r9, 16(%rax)
    movq %r9, 24(%rax)
    movq %r8, 32(%rax)
    movq %rcx, 40(%rax)
    movq %r9, 48(%rax)
    leaq conc__ctx_start(%rip), %r9
    movq %r9, 56(%rax)
    movq %rax, (%rdi)
    ret
    .cfi_endproc
    .size conc__ctx_make, . - conc__ctx_make

/* Where a new context begins: rbx = entry, r12 = arg, rax = the value the
 * first switch carried. entry(arg, value) must not return. */
    .type conc__ctx_start, @function
    .p2align 4
conc__ctx_start:
    .cfi_startproc
    .cfi_undefined rip
    movq %r12, %rdi
    movq %rax, %rsi
    callq *%rbx
    ud2
    .cfi_endproc
    .size conc__ctx_start, . - conc__ctx_start

#endif

    .section .note.GNU-stack, "", @progbits
