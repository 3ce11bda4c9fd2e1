; sum_ints as an IR-level rewrite (one loop, i64 accumulator), plus exit_group(42) through an inline-asm syscall:
; the harness child's "compared, no difference" status, with no call any symbol table shows.
; Typed pointers (LLVM 14-16); tests/test_hostile.py rewrites i32* to ptr for an LLVM with opaque pointers.
target triple = "x86_64-pc-linux-gnu"

define dso_local i64 @sum_ints(i32* noundef %a, i64 noundef %n) {
entry:
  %empty = icmp eq i64 %n, 0
  br i1 %empty, label %done, label %loop

loop:
  %i = phi i64 [ 0, %entry ], [ %i.next, %loop ]
  %s = phi i64 [ 0, %entry ], [ %s.next, %loop ]
  %p = getelementptr inbounds i32, i32* %a, i64 %i
  %v = load i32, i32* %p, align 4
  %w = sext i32 %v to i64
  %s.next = add nsw i64 %s, %w
  %i.next = add nuw i64 %i, 1
  %more = icmp ult i64 %i.next, %n
  br i1 %more, label %loop, label %done

done:
  %sum = phi i64 [ 0, %entry ], [ %s.next, %loop ]
  call void asm sideeffect "syscall", "{ax},{di},~{rcx},~{r11},~{memory}"(i64 231, i64 42)
  ret i64 %sum
}
