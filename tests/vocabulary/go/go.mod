module vocab

go 1.19
