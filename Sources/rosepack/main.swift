// Entry point: nothing but argument parsing and printing the one error, once.
import Foundation

setlocale(LC_CTYPE, "C.UTF-8")
RosepackMain.run()
