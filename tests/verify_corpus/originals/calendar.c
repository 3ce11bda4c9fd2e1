/* Calendar arithmetic of the kind date libraries are made of (coopt's own). */

/* Gregorian leap years. */
int is_leap(int y) {
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* Days in a month (1..12) of a year; 0 for a month out of range. */
int days_in_month(int y, int m) {
    switch (m) {
    case 1: case 3: case 5: case 7: case 8: case 10: case 12:
        return 31;
    case 4: case 6: case 9: case 11:
        return 30;
    case 2:
        return is_leap(y) ? 29 : 28;
    default:
        return 0;
    }
}
