from storage.service import main

main()
